"""Golden outputs: rates and final densities of fixed scenarios, recorded with the code
before the one-engine redesign, so each refactoring step can show it changed nothing."""
