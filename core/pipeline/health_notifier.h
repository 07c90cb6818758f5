// Internal: delivers destination health changes to the gateway's callback on a thread of its
// own ("tracecast-note"), so the callback never runs on submit(), the worker or the sender.
//
//   worker --push(change)--> bounded FIFO (mutex) --> notifier thread --> callback(change)
//
// The worker only appends under a short lock (no callback code runs under it); a slow
// callback delays later notices, never the worker. At k_capacity queued notices the oldest
// is dropped and counted.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "tracecast/pipeline.h"

namespace tracecast::detail {

class HealthNotifier {
 public:
  static constexpr std::size_t k_capacity = 65536;

  HealthNotifier() = default;
  ~HealthNotifier() { stop(); }
  HealthNotifier(const HealthNotifier&) = delete;
  HealthNotifier& operator=(const HealthNotifier&) = delete;

  // Replaces the callback (empty: none); starts the thread at the first one. Thread-safe.
  void set_callback(HealthCallback callback) {
    std::lock_guard lock(mu_);
    callback_ = std::make_shared<HealthCallback>(std::move(callback));
    active_.store(static_cast<bool>(*callback_), std::memory_order_release);
    if (!thread_.joinable() && !stopping_ && *callback_) {
      thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "tracecast-note");
        run();
      });
    }
  }

  // True when a callback is registered: the caller builds a notice only then. Any thread.
  [[nodiscard]] bool active() const noexcept { return active_.load(std::memory_order_acquire); }

  // Queues one notice. Thread-safe; allocates (the queue's node, the notice's strings).
  void push(HealthChange change) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (queue_.size() >= k_capacity) {
        queue_.pop_front();
        dropped_.fetch_add(1, std::memory_order_relaxed);
      }
      queue_.push_back(std::move(change));
    }
    cv_.notify_one();
  }

  // Delivers what is queued, then stops the thread. Idempotent. Thread-safe (not from the
  // callback itself).
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, everything delivered
      HealthChange change = std::move(queue_.front());
      queue_.pop_front();
      std::shared_ptr<HealthCallback> cb = callback_;  // the one in force now; kept alive through the call
      lock.unlock();
      if (cb && *cb) (*cb)(change);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HealthChange> queue_;
  std::shared_ptr<HealthCallback> callback_;
  std::atomic<bool> active_{false};
  std::atomic<std::uint64_t> dropped_{0};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tracecast::detail
