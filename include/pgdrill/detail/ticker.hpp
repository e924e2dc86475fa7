// A thread that calls a function every interval until destroyed: progress while a long call
// runs, and the watch that cancels queries when a signal arrives.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include <pgdrill/error.hpp>

namespace pgdrill::detail {

// Calls `tick` every `interval` on a thread of its own until destroyed (progress while a
// long call runs).
class ticker {
 public:
  ticker(std::function<void()> tick, std::chrono::milliseconds interval) : tick_(std::move(tick)) {
    if (!tick_) return;
    thread_ = std::thread([this, interval] {
      std::unique_lock<std::mutex> lock(mutex_);
      while (!stop_.wait_for(lock, interval, [this] { return stopping_; })) notify(tick_);
    });
  }
  ~ticker() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_one();
    thread_.join();
  }
  ticker(const ticker&) = delete;
  ticker& operator=(const ticker&) = delete;

 private:
  std::function<void()> tick_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pgdrill::detail
