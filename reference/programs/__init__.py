"""Programs of registry ops: the graph, its pygrad and NumPy interpreters, its printer, the
random Modules written as programs (`nets`), and the conditions a program reaches."""
