// Boost.Asio's side of the process benchmarks (bench/run-process-peers.sh),
// with Boost.Process v2 (header-only) on an io_context.
//
//   bench-asio-process --mode spawn --count N   process + async_wait of /bin/true, one at a time
//   bench-asio-process --mode cat --bytes B     B bytes through cat with asio pipes
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/process/v2.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using Clock = std::chrono::steady_clock;

static double cpu_seconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage usage{};
    getrusage(who, &usage);
    total += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
             static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  }
  return total;
}

static int spawn(long count) {
  asio::io_context context;
  long done = 0;
  std::function<void()> next = [&] {
    auto child = std::make_shared<bp::process>(context, "/bin/true", std::vector<std::string>{});
    child->async_wait([&, child](boost::system::error_code, int) {
      if (++done < count) next();
    });
  };
  auto start = Clock::now();
  next();
  context.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("procs_per_s=%.0f us_per_proc=%.1f\n", count / elapsed, elapsed / count * 1e6);
  return 0;
}

static int cat(std::size_t total) {
  asio::io_context context;
  asio::writable_pipe in(context);
  asio::readable_pipe out(context);
  std::string chunk(1 << 18, 'x');
  std::vector<char> buffer(1 << 18);
  std::size_t sent = 0;
  std::size_t received = 0;
  double cpu_before = cpu_seconds();
  auto start = Clock::now();
  bp::process child(context, "/bin/cat", std::vector<std::string>{},
                    bp::process_stdio{in, out, {}});
  std::function<void()> write_next = [&] {
    if (sent == total) {
      in.close();
      return;
    }
    std::size_t n = std::min(chunk.size(), total - sent);
    asio::async_write(in, asio::buffer(chunk.data(), n),
                      [&](boost::system::error_code error, std::size_t written) {
                        if (error) std::exit(1);
                        sent += written;
                        write_next();
                      });
  };
  std::function<void()> read_next = [&] {
    out.async_read_some(asio::buffer(buffer), [&](boost::system::error_code error, std::size_t n) {
      received += n;
      if (!error) read_next();
    });
  };
  write_next();
  read_next();
  context.run();
  child.wait();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = cpu_seconds() - cpu_before;
  if (received != total) {
    std::fprintf(stderr, "cat: %zu bytes came back of %zu\n", received, total);
    return 1;
  }
  std::printf("gb_per_s=%.3f cpu_us_per_mib=%.1f\n", total / elapsed / 1e9,
              cpu / (static_cast<double>(total) / (1 << 20)) * 1e6);
  return 0;
}

int main(int argc, char** argv) {
  std::string mode;
  long count = 1000;
  std::size_t bytes = std::size_t{1} << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i];
    if (option == "--mode") mode = argv[i + 1];
    if (option == "--count") count = std::atol(argv[i + 1]);
    if (option == "--bytes") bytes = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (mode == "spawn") return spawn(count);
  if (mode == "cat") return cat(bytes);
  std::fprintf(stderr, "usage: %s --mode spawn|cat [--count N] [--bytes B]\n", argv[0]);
  return 2;
}
