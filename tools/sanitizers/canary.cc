// A program with one deliberate bug per mode, so sanitizer_canary_test can show that the
// sanitizer builds (.bazelrc --config=asan / --config=tsan, with the options CI runs them
// with) turn each kind of report into a failing exit status — the promise "a leak, UB or race
// fails CI" checked rather than assumed.
//
//   canary which     prints the sanitizers this binary was built with: asan, tsan or none
//   canary leak      allocates and drops the only pointer          (LeakSanitizer)
//   canary ub        signed integer overflow                        (UndefinedBehaviorSanitizer)
//   canary overflow  reads one element past a heap array            (AddressSanitizer)
//   canary race      two threads increment a plain int              (ThreadSanitizer)
//   canary clean     none of that                                   (no report under any)
//
// Every mode exits 0 unless a sanitizer stops it.
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CANARY_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CANARY_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CANARY_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CANARY_TSAN 1
#endif

namespace {

int* volatile sink = nullptr;  // volatile: the compiler may not reason the bugs away

int Leak() {
  sink = new int[16];
  sink = nullptr;
  return 0;
}

int SignedOverflow() {
  volatile int one = 1;
  int value = INT_MAX;
  value += one;
  std::printf("%d\n", value);
  return 0;
}

int HeapOverflow() {
  int* array = new int[8];
  std::memset(array, 0, 8 * sizeof(int));
  volatile int index = 8;
  int value = array[index];
  delete[] array;
  std::printf("%d\n", value);
  return 0;
}

int Race() {
  int counter = 0;
  auto add = [&counter] {
    for (int i = 0; i < 100000; ++i) counter = counter + 1;
  };
  std::thread first(add), second(add);
  first.join();
  second.join();
  std::printf("%d\n", counter);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "which") == 0) {
#if defined(CANARY_ASAN)
    std::puts("asan");
#elif defined(CANARY_TSAN)
    std::puts("tsan");
#else
    std::puts("none");
#endif
    return 0;
  }
  if (std::strcmp(mode, "leak") == 0) return Leak();
  if (std::strcmp(mode, "ub") == 0) return SignedOverflow();
  if (std::strcmp(mode, "overflow") == 0) return HeapOverflow();
  if (std::strcmp(mode, "race") == 0) return Race();
  if (std::strcmp(mode, "clean") == 0) return 0;
  std::fprintf(stderr, "usage: canary which|leak|ub|overflow|race|clean\n");
  return 2;
}
