// tulip: Python asyncio's low-level networking model in C++20.
//
// The umbrella header: includes every public concept.
#pragma once

#include "tulip/address_info.hpp"
#include "tulip/connection.hpp"
#include "tulip/connection_options.hpp"
#include "tulip/datagram.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/future.hpp"
#include "tulip/handle.hpp"
#include "tulip/log.hpp"
#include "tulip/peer_credentials.hpp"
#include "tulip/protocol.hpp"
#include "tulip/server.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/transport.hpp"
#include "tulip/version.hpp"
