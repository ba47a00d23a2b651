// The bodies of EventLoop's member templates (the connection, server, pipe,
// subprocess and datagram factories, run_until_complete, run_in_executor),
// kept out of the class so that event_loop.hpp reads as the loop's interface.
// Included at the end of tulip/event_loop.hpp; not a header of its own.
#pragma once

#include "tulip/event_loop.hpp"

namespace tulip {

template <class T>
T EventLoop::run_until_complete(Future<T> future) {
  if (!future.valid()) throw std::invalid_argument("run_until_complete() of an empty Future");
  if (&future.get_loop() != this) {
    throw std::invalid_argument(
        "The future belongs to a different loop than the one it is run with");
  }
  CallbackId id = future.add_done_callback([this] { stop(); });
  try {
    run_forever();
  } catch (...) {
    future.remove_done_callback(id);
    throw;
  }
  future.remove_done_callback(id);
  if (!future.done()) throw RuntimeError("Event loop stopped before Future completed.");
  if constexpr (std::is_void_v<T>) {
    future.result();
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return future.result();
  } else {
    return std::move(future.result());
  }
}

template <class Factory>
auto EventLoop::create_connection(Factory&& protocol_factory, std::string host, std::uint16_t port,
                                  ConnectOptions options) {
  using P = detail::FactoryProtocol<Factory>;
  Future<Connection<P>> result = create_future<Connection<P>>();
  detail::cancel_on_cancel(
      result,
      detail::open_connection(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)),
                              host, port, options, detail::complete_connection(result)));
  return result;
}

template <class Factory>
auto EventLoop::connect_accepted_socket(Factory&& protocol_factory, int fd) {
  using P = detail::FactoryProtocol<Factory>;
  Future<Connection<P>> result = create_future<Connection<P>>();
  detail::adopt_connection(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)),
                           fd, detail::complete_connection(result));
  return result;
}

template <class Factory>
Future<std::shared_ptr<Server>> EventLoop::create_server(Factory&& protocol_factory,
                                                         std::string host, std::uint16_t port,
                                                         ServerOptions options) {
  Future<std::shared_ptr<Server>> result = create_future<std::shared_ptr<Server>>();
  detail::open_server(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)),
                      std::move(host), port, std::move(options), detail::complete_server(result));
  return result;
}

template <class Factory>
Future<std::shared_ptr<Server>> EventLoop::create_server(Factory&& protocol_factory, int sock,
                                                         ServerOptions options) {
  Future<std::shared_ptr<Server>> result = create_future<std::shared_ptr<Server>>();
  detail::adopt_server(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)), sock,
                       std::move(options), false, detail::complete_server(result));
  return result;
}

template <class Factory>
auto EventLoop::create_unix_connection(Factory&& protocol_factory, std::string path,
                                       UnixConnectOptions options) {
  using P = detail::FactoryProtocol<Factory>;
  Future<Connection<P>> result = create_future<Connection<P>>();
  detail::cancel_on_cancel(
      result, detail::open_unix_connection(
                  *this, detail::erase_factory(std::forward<Factory>(protocol_factory)),
                  std::move(path), options, detail::complete_connection(result)));
  return result;
}

template <class Factory>
Future<std::shared_ptr<Server>> EventLoop::create_unix_server(Factory&& protocol_factory,
                                                              std::string path,
                                                              UnixServerOptions options) {
  Future<std::shared_ptr<Server>> result = create_future<std::shared_ptr<Server>>();
  detail::open_unix_server(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)),
                           std::move(path), options, detail::complete_server(result));
  return result;
}

template <class Factory>
Future<std::shared_ptr<Server>> EventLoop::create_unix_server(Factory&& protocol_factory, int sock,
                                                              UnixServerOptions options) {
  Future<std::shared_ptr<Server>> result = create_future<std::shared_ptr<Server>>();
  ServerOptions server_options;
  server_options.backlog = options.backlog;
  server_options.start_serving = options.start_serving;
  server_options.ssl = std::move(options.ssl);
  server_options.ssl_handshake_timeout = options.ssl_handshake_timeout;
  server_options.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
  detail::adopt_server(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)), sock,
                       server_options, true, detail::complete_server(result));
  return result;
}

template <class Factory>
auto EventLoop::connect_read_pipe(Factory&& protocol_factory, int fd) {
  using P = detail::FactoryProtocol<Factory>;
  Future<ReadPipe<P>> result = create_future<ReadPipe<P>>();
  detail::open_pipe(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)), fd,
                    false, detail::complete_pipe(result));
  return result;
}

template <class Factory>
auto EventLoop::connect_write_pipe(Factory&& protocol_factory, int fd) {
  using P = detail::FactoryProtocol<Factory>;
  Future<WritePipe<P>> result = create_future<WritePipe<P>>();
  detail::open_pipe(*this, detail::erase_factory(std::forward<Factory>(protocol_factory)), fd, true,
                    detail::complete_pipe(result));
  return result;
}

template <class Factory>
auto EventLoop::subprocess_exec(Factory&& protocol_factory, std::vector<std::string> argv,
                                SubprocessOptions options) {
  using P = detail::SubprocessFactoryProtocol<Factory>;
  Future<SubprocessConnection<P>> result = create_future<SubprocessConnection<P>>();
  detail::open_subprocess(*this,
                          detail::erase_subprocess_factory(std::forward<Factory>(protocol_factory)),
                          std::move(argv), std::move(options), detail::complete_subprocess(result),
                          [result] { return result.cancelled(); });
  return result;
}

template <class Factory>
auto EventLoop::subprocess_shell(Factory&& protocol_factory, std::string command,
                                 SubprocessOptions options) {
  return subprocess_exec(std::forward<Factory>(protocol_factory),
                         {"/bin/sh", "-c", std::move(command)}, std::move(options));
}

template <class Factory>
auto EventLoop::create_datagram_endpoint(Factory&& protocol_factory,
                                         std::optional<HostPort> local_addr,
                                         std::optional<HostPort> remote_addr,
                                         DatagramOptions options) {
  using P = typename std::invoke_result_t<Factory&>::element_type;
  Future<DatagramEndpoint<P>> result = create_future<DatagramEndpoint<P>>();
  detail::open_datagram_endpoint(
      *this, detail::erase_datagram_factory(std::forward<Factory>(protocol_factory)),
      std::move(local_addr), std::move(remote_addr), std::move(options),
      detail::complete_datagram(result));
  return result;
}

template <class Factory>
auto EventLoop::create_unix_datagram_endpoint(Factory&& protocol_factory,
                                              std::optional<std::string> local_path,
                                              std::optional<std::string> remote_path,
                                              UnixDatagramOptions options) {
  using P = typename std::invoke_result_t<Factory&>::element_type;
  Future<DatagramEndpoint<P>> result = create_future<DatagramEndpoint<P>>();
  detail::open_unix_datagram_endpoint(
      *this, detail::erase_datagram_factory(std::forward<Factory>(protocol_factory)),
      std::move(local_path), std::move(remote_path), options, detail::complete_datagram(result));
  return result;
}

template <class F>
auto EventLoop::run_in_executor(std::shared_ptr<Executor> executor, F&& function) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  static_assert(std::is_void_v<R> || std::is_move_constructible_v<R>,
                "run_in_executor needs a function whose result can be moved");
  if (detail::is_empty_callable(function)) throw_empty_callback("run_in_executor");
  Future<R> result = create_future<R>();
  auto outcome = std::make_shared<detail::JobOutcome<R>>();
  submit_job(
      std::move(executor),
      [outcome, function = std::forward<F>(function)]() mutable { outcome->run(function); },
      [outcome, result]() mutable { outcome->deliver(result); });
  // A job cancelled before a worker takes it is skipped.
  result.add_done_callback([outcome](Future<R>& done) {
    if (done.cancelled()) outcome->cancelled.store(true, std::memory_order_release);
  });
  return result;
}

}  // namespace tulip
