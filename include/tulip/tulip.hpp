// tulip: Python asyncio's low-level networking model in C++20.
//
// The umbrella header: includes every public concept.
#pragma once

#include "tulip/connection.hpp"
#include "tulip/connection_options.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/exception_group.hpp"
#include "tulip/future.hpp"
#include "tulip/handle.hpp"
#include "tulip/locks.hpp"
#include "tulip/log.hpp"
#include "tulip/protocol.hpp"
#include "tulip/queues.hpp"
#include "tulip/runners.hpp"
#include "tulip/server.hpp"
#include "tulip/sleep.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/streams.hpp"
#include "tulip/task.hpp"
#include "tulip/task_group.hpp"
#include "tulip/tasks.hpp"
#include "tulip/timeouts.hpp"
#include "tulip/transport.hpp"
#include "tulip/version.hpp"
