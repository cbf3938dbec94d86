// placeholder: the benchmark entry point (issue 5)
export {};
