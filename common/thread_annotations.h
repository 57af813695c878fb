// Clang thread-safety annotations: say which lock guards which field, and what a function
// needs held, so that `-Wthread-safety` (the `--config=clang-tsa` build) checks it.
//
// Under gcc, or any compiler without the attributes, every macro expands to nothing: the
// annotations document the contract there and cost nothing.
//
// Use them with the annotated capability type in common/mutex.h. libstdc++'s std::mutex
// carries no annotations, so clang cannot check a field guarded by one.
//
//   class Queue {
//    public:
//     void Push(int v) EXCLUDES(mu_);
//    private:
//     void PushLocked(int v) REQUIRES(mu_);
//     Mutex mu_;
//     std::deque<int> items_ GUARDED_BY(mu_);
//   };
//
// Clang's documentation of the analysis: https://clang.llvm.org/docs/ThreadSafetyAnalysis.html
#ifndef UNDERSTUDY_COMMON_THREAD_ANNOTATIONS_H_
#define UNDERSTUDY_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define UNDERSTUDY_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define UNDERSTUDY_THREAD_ANNOTATION_(x)
#endif

// On a type: it is a lock ("capability") the analysis tracks.
#define CAPABILITY(x) UNDERSTUDY_THREAD_ANNOTATION_(capability(x))
// On an RAII type: constructing acquires, destroying releases.
#define SCOPED_CAPABILITY UNDERSTUDY_THREAD_ANNOTATION_(scoped_lockable)

// On a field: read and written only with the lock held.
#define GUARDED_BY(x) UNDERSTUDY_THREAD_ANNOTATION_(guarded_by(x))
// On a pointer field: the pointee is read and written only with the lock held.
#define PT_GUARDED_BY(x) UNDERSTUDY_THREAD_ANNOTATION_(pt_guarded_by(x))

// On a lock field: the order in which locks must be taken.
#define ACQUIRED_BEFORE(...) UNDERSTUDY_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) UNDERSTUDY_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// On a function: the caller must hold the lock (exclusively / at least shared).
#define REQUIRES(...) UNDERSTUDY_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) UNDERSTUDY_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// The spelling LevelDB and older Abseil use; same meaning as REQUIRES.
#define EXCLUSIVE_LOCKS_REQUIRED(...) REQUIRES(__VA_ARGS__)
#define SHARED_LOCKS_REQUIRED(...) REQUIRES_SHARED(__VA_ARGS__)

// On a function: it acquires / releases the lock (held on return / not held on return).
#define ACQUIRE(...) UNDERSTUDY_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) UNDERSTUDY_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) UNDERSTUDY_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) UNDERSTUDY_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define EXCLUSIVE_LOCK_FUNCTION(...) ACQUIRE(__VA_ARGS__)
#define UNLOCK_FUNCTION(...) RELEASE(__VA_ARGS__)
// On a function: it tries to acquire; the first argument is the return value meaning success.
#define TRY_ACQUIRE(...) UNDERSTUDY_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))

// On a function: the caller must NOT hold the lock (the function takes it itself).
#define EXCLUDES(...) UNDERSTUDY_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) EXCLUDES(__VA_ARGS__)

// On a function: it checks at run time that the lock is held, and the analysis trusts that.
#define ASSERT_CAPABILITY(x) UNDERSTUDY_THREAD_ANNOTATION_(assert_capability(x))
// On a function: it returns a reference to the given lock.
#define RETURN_CAPABILITY(x) UNDERSTUDY_THREAD_ANNOTATION_(lock_returned(x))

// On a function: skip the analysis inside it. Every use says in a comment why it is safe.
#define NO_THREAD_SAFETY_ANALYSIS UNDERSTUDY_THREAD_ANNOTATION_(no_thread_safety_analysis)

#endif  // UNDERSTUDY_COMMON_THREAD_ANNOTATIONS_H_
