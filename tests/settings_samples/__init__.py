"""Settings classes as users write them, one per module (how a class is read depends on its
module: one that uses asyncjobs.arq is an arq project)."""
