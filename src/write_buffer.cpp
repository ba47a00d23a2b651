#include "write_buffer.hpp"

#include <algorithm>

namespace tulip::detail {

void WriteBuffer::append(std::string_view data) {
  if (data.empty()) return;
  size_ += data.size();
  if (data.size() < kCoalesceLimit && head_ < chunks_.size()) {
    std::string& last = chunks_.back();
    if (last.size() + data.size() <= last.capacity() ||
        last.size() + data.size() <= kCoalesceLimit) {
      last.append(data);
      return;
    }
  }
  std::string& chunk = chunks_.emplace_back();
  if (data.size() < kCoalesceLimit) chunk.reserve(kCoalesceLimit);
  chunk.append(data);
}

void WriteBuffer::append(std::string&& data) {
  if (data.empty()) return;
  if (data.size() < kCoalesceLimit) {
    append(std::string_view(data));
    return;
  }
  size_ += data.size();
  chunks_.push_back(std::move(data));
}

std::size_t WriteBuffer::gather(iovec* buffers, std::size_t max) const {
  std::size_t count = 0;
  std::size_t offset = front_offset_;
  for (auto it = chunks_.begin() + static_cast<std::ptrdiff_t>(head_);
       it != chunks_.end() && count < max; ++it) {
    buffers[count].iov_base = const_cast<char*>(it->data() + offset);
    buffers[count].iov_len = it->size() - offset;
    ++count;
    offset = 0;
  }
  return count;
}

void WriteBuffer::consume(std::size_t bytes) {
  bytes = std::min(bytes, size_);
  size_ -= bytes;
  while (bytes > 0) {
    std::size_t available = chunks_[head_].size() - front_offset_;
    if (bytes < available) {
      front_offset_ += bytes;
      return;
    }
    bytes -= available;
    pop_front_chunk();
  }
}

void WriteBuffer::pop_front_chunk() {
  front_offset_ = 0;
  if (++head_ == chunks_.size()) {
    chunks_.clear();  // the common case: the buffer drained completely
    head_ = 0;
  } else if (head_ >= 16 && head_ * 2 >= chunks_.size()) {
    // Consumed chunks dominate: move the live ones down so the vector does not
    // grow while a writer keeps the buffer from ever draining.
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void WriteBuffer::clear() noexcept {
  chunks_ = {};  // an aborted transport keeps nothing
  head_ = 0;
  front_offset_ = 0;
  size_ = 0;
}

}  // namespace tulip::detail
