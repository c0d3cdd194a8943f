/*
 * nvml-floor: the per-call floor of a libnvidia-ml, for the addon-vs-C benchmark (bench/nvml.ts). dlopen()s
 * LIBPATH, calls nvmlInit_v2, then times N calls of nvmlDeviceGetCount_v2 (the cheapest NVML call: on the fake
 * it is only the common entry prologue: lock, stat() of the fault file, fault look-ups) and prints one JSON
 * line: {"calls":N,"nsPerCall":X}. Built by the benchmark with the system C compiler (cc -O2 ... -ldl).
 * Usage: nvml-floor LIBPATH N
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*init_fn)(void);
typedef int (*count_fn)(unsigned int *);

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s LIBPATH N\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "nvml-floor: %s\n", dlerror());
    return 1;
  }
  init_fn init = (init_fn)dlsym(lib, "nvmlInit_v2");
  init_fn shutdown = (init_fn)dlsym(lib, "nvmlShutdown");
  count_fn count = (count_fn)dlsym(lib, "nvmlDeviceGetCount_v2");
  if (!init || !shutdown || !count) {
    fprintf(stderr, "nvml-floor: %s lacks nvmlInit_v2 / nvmlShutdown / nvmlDeviceGetCount_v2\n", argv[1]);
    return 1;
  }
  int rc = init();
  if (rc != 0) {
    fprintf(stderr, "nvml-floor: nvmlInit_v2 returned %d\n", rc);
    return 1;
  }
  long n = atol(argv[2]);
  unsigned int devices = 0;
  for (long i = 0; i < n / 10 + 1; i++) count(&devices); /* warm-up */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) count(&devices);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)(n > 0 ? n : 1);
  printf("{\"calls\":%ld,\"nsPerCall\":%.1f}\n", n, ns);
  shutdown();
  dlclose(lib);
  return 0;
}
