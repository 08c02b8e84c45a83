// The asyncjobs dashboard's own script: confirmation of destructive actions, and a job's
// progress kept live over its server-sent events. No inline script anywhere (the pages'
// Content-Security-Policy forbids it); htmx refreshes the other live parts.
"use strict";

// A form with data-confirm asks before it is sent, and tells the server it was confirmed
// (without this script, the server asks on a page of its own).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const confirmed = form.querySelector('input[name="confirmed"]');
  if (confirmed) confirmed.value = "yes";
});

const TERMINAL = new Set(["succeeded", "failed", "cancelled", "expired", "not_found"]);

function setText(root, field, text) {
  for (const element of root.querySelectorAll(`[data-field="${field}"]`)) {
    element.textContent = text;
  }
}

function showJob(root, job) {
  const status = root.ownerDocument.querySelector('[data-field="status"]');
  if (status) {
    status.textContent = job.status;
    status.className = `status s-${job.status}`;
  }
  setText(root.ownerDocument, "attempts", String(job.attempts));
  const bar = root.querySelector('[data-field="progress"]');
  if (bar && job.progress !== undefined && job.progress !== null) {
    bar.value = job.progress;
    setText(root, "percent", `${Math.round(job.progress * 100)}%`);
  }
  if (job.stage !== undefined) setText(root, "stage", job.stage || "");
  if (job.message !== undefined) setText(root, "message", job.message || "");
  if (job.eta) {
    const seconds = Math.max(0, Math.round((new Date(job.eta) - Date.now()) / 1000));
    setText(root, "eta", `${new Date(job.eta).toISOString().replace("T", " ").slice(0, 19)} UTC (in ${seconds}s)`);
  }
}

function watchJob() {
  const root = document.querySelector("[data-events]");
  if (!root || typeof EventSource === "undefined") return;
  const source = new EventSource(root.dataset.events);
  source.onmessage = (event) => {
    const job = JSON.parse(event.data);
    showJob(root, job);
    if (TERMINAL.has(job.status)) {
      source.close();
      window.location.reload(); // the result or the error, and the buttons that now apply
    }
  };
  source.onerror = () => {
    source.close();
    setText(root, "live", "live updates stopped: reload the page");
  };
}

document.addEventListener("DOMContentLoaded", watchJob);
