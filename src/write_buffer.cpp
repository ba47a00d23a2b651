#include "write_buffer.hpp"

#include <algorithm>

namespace tulip::detail {

void WriteBuffer::append(std::string_view data) {
  if (data.empty()) return;
  size_ += data.size();
  if (data.size() < kCoalesceLimit && !chunks_.empty()) {
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
  for (auto it = chunks_.begin(); it != chunks_.end() && count < max; ++it) {
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
    std::size_t available = chunks_.front().size() - front_offset_;
    if (bytes < available) {
      front_offset_ += bytes;
      return;
    }
    bytes -= available;
    chunks_.pop_front();
    front_offset_ = 0;
  }
}

void WriteBuffer::clear() noexcept {
  chunks_.clear();
  front_offset_ = 0;
  size_ = 0;
}

}  // namespace tulip::detail
