"""CIFAR-10-C / CIFAR-100-C style corruption sets: the release file format (`files`), seeded
parallel generation (`generate`), the suite-shared cache (`cache`) and summary metrics (`metrics`).
The corruption algorithms themselves live in `cutmix_bench.corruptions`."""
