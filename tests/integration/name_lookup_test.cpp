// loop.getaddrinfo and loop.getnameinfo: answers from jobs on the default executor.
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>

#include <string>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

TEST(NameLookupTest, GetaddrinfoAnswersWithEveryField) {
  EventLoop loop;
  auto answers = loop.run_until_complete(
      loop.getaddrinfo("127.0.0.1", "8080", AF_INET, SOCK_DGRAM, 0, AI_NUMERICHOST));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].family, AF_INET);
  EXPECT_EQ(answers[0].type, SOCK_DGRAM);
  EXPECT_EQ(answers[0].protocol, IPPROTO_UDP);
  EXPECT_EQ(answers[0].address, *SocketAddress::parse("127.0.0.1", 8080));
  // No type given: one answer per socket type, as the C library gives them.
  auto all = loop.run_until_complete(loop.getaddrinfo("::1", "80", 0, 0, 0, AI_NUMERICHOST));
  EXPECT_GE(all.size(), 2u);
  for (const AddressInfo& info : all) EXPECT_EQ(info.address.to_string(), "('::1', 80, 0, 0)");
}

TEST(NameLookupTest, GetnameinfoNamesAnAddress) {
  EventLoop loop;
  NameInfo name = loop.run_until_complete(
      loop.getnameinfo(*SocketAddress::parse("127.0.0.1", 8080), NI_NUMERICHOST | NI_NUMERICSERV));
  EXPECT_EQ(name.host, "127.0.0.1");
  EXPECT_EQ(name.service, "8080");
}

TEST(NameLookupTest, FailuresNameTheQuestion) {
  EventLoop loop;
  try {
    loop.run_until_complete(loop.getaddrinfo("not-an-address", "80", 0, 0, 0, AI_NUMERICHOST));
    ADD_FAILURE() << "a name resolved with AI_NUMERICHOST";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), make_error_code(Error::kNameResolution));
    EXPECT_NE(std::string(e.what()).find("getaddrinfo('not-an-address', '80')"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(loop.run_until_complete(loop.getnameinfo(SocketAddress())), OSError);
}

}  // namespace
}  // namespace tulip::testing
