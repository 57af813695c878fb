// IPv4 socket addresses for the IP-based transports (tcp://, tls://, zmq+curve://, rdma://):
// resolving a host name and printing an address as "10.0.0.2:7400" in log lines.
#ifndef UNDERSTUDY_TRANSPORT_SOCKET_ADDRESS_H_
#define UNDERSTUDY_TRANSPORT_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace understudy::transport {

// The first IPv4 address of `host` (a name or a dotted quad), with `port` set.
// kNotFound, naming the host, when it does not resolve.
Result<sockaddr_in> ResolveIpv4(const std::string& host, uint16_t port);

// "10.0.0.2": the address alone, without the port.
std::string Ipv4Text(const sockaddr_in& address);

// "10.0.0.2:7400" (IPv4) or "[fe80::1]:7400" (IPv6); never fails.
std::string DescribeAddress(const sockaddr* address);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_SOCKET_ADDRESS_H_
