/* The network guest: a VM with a small stateful UDP service, so a test can tell whether a
 * failover lost, repeated or invented requests the service had acknowledged.
 *
 * Command line: "ip=A.B.C.D port=N" (defaults 10.96.0.2 and 7000).
 *
 * Service (UDP, all fields little-endian):
 *   request  u32 magic 0x51525355 ("USRQ"), u32 client_id, u32 request_no, u32 op
 *   reply    u32 magic 0x50525355 ("USRP"), u32 client_id, u32 request_no, u32 status,
 *            u64 value
 * The only op is 1, "increment". The guest counts applied requests (`applied`) and keeps,
 * per client id 0..63, the last request number it applied and the value it answered. For
 * request r from client c, with last = the last request number applied for c (0 before any):
 *   r == last + 1   apply: applied += 1; answer value = applied, status 0 (ok)
 *   r == last > 0   a retransmit: answer the remembered value again, status 0, apply nothing
 *   r < last or 0   status 1 (stale), value 0
 *   r > last + 1    status 2 (gap), value 0, nothing applied
 *   bad op or id    status 3 (invalid), value 0, nothing applied
 * So across all clients the ok values are exactly 1..applied, each answered to one request.
 * Datagrams of any other size or magic are ignored.
 *
 * Network: ARP (answers requests for its address) and IPv4/UDP over the e1000 (e1000.h);
 * no fragments, IP options tolerated, UDP checksums checked when present and always sent.
 * Replies go to the source MAC, IP and port of the request, so the guest never has to ask
 * ARP itself. Console: a boot line with MAC, IP and port, then "applied N" every 100 applied
 * requests; driver trouble prints "NET ERROR: ...".
 *
 * All state is in RAM or in the NIC, and nothing depends on time: a checkpoint taken at any
 * instant and resumed on another QEMU carries on serving. */
#include "e1000.h"
#include "guest_runtime.h"

#define DEFAULT_IP 0x0A600002u /* 10.96.0.2 */
#define DEFAULT_PORT 7000u

/* ---- byte order: the wire is big-endian, the service payload little-endian ---- */

static uint16_t load_be16(const uint8_t* at) { return (uint16_t)((at[0] << 8) | at[1]); }

static uint32_t load_be32(const uint8_t* at) {
  return ((uint32_t)at[0] << 24) | ((uint32_t)at[1] << 16) | ((uint32_t)at[2] << 8) | at[3];
}

static uint32_t load_le32(const uint8_t* at) {
  return at[0] | ((uint32_t)at[1] << 8) | ((uint32_t)at[2] << 16) | ((uint32_t)at[3] << 24);
}

static void store_be16(uint8_t* at, uint16_t value) {
  at[0] = (uint8_t)(value >> 8);
  at[1] = (uint8_t)value;
}

static void store_be32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; ++i) at[i] = (uint8_t)(value >> (24 - 8 * i));
}

static void store_le32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; ++i) at[i] = (uint8_t)(value >> (8 * i));
}

static void store_le64(uint8_t* at, uint64_t value) {
  store_le32(at, (uint32_t)value);
  store_le32(at + 4, (uint32_t)(value >> 32));
}

static void copy_bytes(uint8_t* to, const uint8_t* from, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) to[i] = from[i];
}

/* ---- the service: pure state machine, no networking ---- */

enum {
  REQUEST_MAGIC = 0x51525355u, /* "USRQ" */
  REPLY_MAGIC = 0x50525355u,   /* "USRP" */
  REQUEST_BYTES = 16,
  REPLY_BYTES = 24,
  OP_INCREMENT = 1,
  STATUS_OK = 0,
  STATUS_STALE = 1,
  STATUS_GAP = 2,
  STATUS_INVALID = 3,
  MAX_CLIENTS = 64,
  PROGRESS_EVERY = 100,
};

struct client_state {
  uint32_t last_request; /* 0: none applied yet */
  uint64_t last_value;
};

static struct {
  uint64_t applied;
  uint32_t until_progress_line;
  struct client_state clients[MAX_CLIENTS];
} service = {.until_progress_line = PROGRESS_EVERY};

/* Decides request `request` (REQUEST_BYTES, already length-checked) and writes the reply. */
static void serve(const uint8_t* request, uint8_t* reply) {
  uint32_t client_id = load_le32(request + 4);
  uint32_t request_no = load_le32(request + 8);
  uint32_t op = load_le32(request + 12);
  uint32_t status = STATUS_INVALID;
  uint64_t value = 0;
  if (op == OP_INCREMENT && client_id < MAX_CLIENTS) {
    struct client_state* client = &service.clients[client_id];
    if (request_no == client->last_request + 1) {
      client->last_request = request_no;
      client->last_value = ++service.applied;
      status = STATUS_OK;
      value = client->last_value;
      if (--service.until_progress_line == 0) {
        service.until_progress_line = PROGRESS_EVERY;
        serial_write("applied ");
        serial_write_u32((uint32_t)service.applied);
        serial_write("\n");
      }
    } else if (request_no == client->last_request && request_no != 0) {
      status = STATUS_OK;
      value = client->last_value;
    } else if (request_no < client->last_request || request_no == 0) {
      status = STATUS_STALE;
    } else {
      status = STATUS_GAP;
    }
  }
  store_le32(reply, REPLY_MAGIC);
  store_le32(reply + 4, client_id);
  store_le32(reply + 8, request_no);
  store_le32(reply + 12, status);
  store_le64(reply + 16, value);
}

/* ---- the protocols: Ethernet, ARP, IPv4, UDP ---- */

enum {
  ETH_HEADER = 14,
  ETH_TYPE_IPV4 = 0x0800,
  ETH_TYPE_ARP = 0x0806,
  ARP_BYTES = 28,
  ARP_REQUEST = 1,
  ARP_REPLY = 2,
  IPV4_HEADER = 20, /* what we send; what we accept may carry options */
  IPV4_PROTO_UDP = 17,
  IPV4_DONT_FRAGMENT = 0x4000,
  IPV4_MORE_FRAGMENTS = 0x2000,
  IPV4_OFFSET_MASK = 0x1FFF,
  UDP_HEADER = 8,
  DEFAULT_TTL = 64,
};

static struct {
  struct e1000 nic;
  uint32_t ip; /* host order */
  uint16_t port;
  uint16_t next_ip_id;
} net;

static uint8_t out_frame[E1000_MAX_FRAME];

/* The Internet checksum's running one's-complement sum over `count` bytes. */
static uint32_t checksum_add(uint32_t sum, const uint8_t* data, uint32_t count) {
  for (uint32_t i = 0; i + 1 < count; i += 2) sum += load_be16(data + i);
  if (count & 1) sum += (uint32_t)data[count - 1] << 8;
  return sum;
}

static uint16_t checksum_finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFFu) + (sum >> 16);
  return (uint16_t)~sum;
}

/* The UDP checksum over pseudo-header, header and payload; 0 means "correct" for a
 * received datagram whose checksum field is included. */
static uint16_t udp_checksum(uint32_t source_ip, uint32_t destination_ip, const uint8_t* udp, uint32_t udp_length) {
  uint32_t sum = (source_ip >> 16) + (source_ip & 0xFFFFu) + (destination_ip >> 16) + (destination_ip & 0xFFFFu);
  sum += IPV4_PROTO_UDP + udp_length;
  return checksum_finish(checksum_add(sum, udp, udp_length));
}

static void write_eth_header(uint8_t* frame, const uint8_t* destination_mac, uint16_t type) {
  copy_bytes(frame, destination_mac, E1000_MAC_BYTES);
  copy_bytes(frame + 6, net.nic.mac, E1000_MAC_BYTES);
  store_be16(frame + 12, type);
}

static void handle_arp(const uint8_t* frame, uint32_t length) {
  if (length < ETH_HEADER + ARP_BYTES) return;
  const uint8_t* arp = frame + ETH_HEADER;
  /* Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses: nothing else is for us. */
  if (load_be16(arp) != 1 || load_be16(arp + 2) != ETH_TYPE_IPV4 || arp[4] != 6 || arp[5] != 4) return;
  if (load_be16(arp + 6) != ARP_REQUEST || load_be32(arp + 24) != net.ip) return;
  const uint8_t* sender_mac = arp + 8;
  const uint8_t* sender_ip = arp + 14;

  write_eth_header(out_frame, sender_mac, ETH_TYPE_ARP);
  uint8_t* answer = out_frame + ETH_HEADER;
  store_be16(answer, 1);
  store_be16(answer + 2, ETH_TYPE_IPV4);
  answer[4] = 6;
  answer[5] = 4;
  store_be16(answer + 6, ARP_REPLY);
  copy_bytes(answer + 8, net.nic.mac, E1000_MAC_BYTES);
  store_be32(answer + 14, net.ip);
  copy_bytes(answer + 18, sender_mac, E1000_MAC_BYTES);
  copy_bytes(answer + 24, sender_ip, 4);
  (void)e1000_transmit(&net.nic, out_frame, ETH_HEADER + ARP_BYTES);
}

/* Sends `payload` back to where the datagram in `request_frame` came from. */
static void send_udp_reply(const uint8_t* request_frame, uint32_t request_ip_header, const uint8_t* payload,
                           uint32_t payload_length) {
  const uint8_t* request_ip = request_frame + ETH_HEADER;
  const uint8_t* request_udp = request_ip + request_ip_header;
  uint32_t destination_ip = load_be32(request_ip + 12);
  uint32_t udp_length = UDP_HEADER + payload_length;

  write_eth_header(out_frame, request_frame + 6, ETH_TYPE_IPV4);
  uint8_t* ip = out_frame + ETH_HEADER;
  ip[0] = 0x45; /* version 4, 5-word header */
  ip[1] = 0;
  store_be16(ip + 2, (uint16_t)(IPV4_HEADER + udp_length));
  store_be16(ip + 4, net.next_ip_id++);
  store_be16(ip + 6, IPV4_DONT_FRAGMENT);
  ip[8] = DEFAULT_TTL;
  ip[9] = IPV4_PROTO_UDP;
  store_be16(ip + 10, 0);
  store_be32(ip + 12, net.ip);
  store_be32(ip + 16, destination_ip);
  store_be16(ip + 10, checksum_finish(checksum_add(0, ip, IPV4_HEADER)));

  uint8_t* udp = ip + IPV4_HEADER;
  store_be16(udp, net.port);
  store_be16(udp + 2, load_be16(request_udp)); /* back to the sender's port */
  store_be16(udp + 4, (uint16_t)udp_length);
  store_be16(udp + 6, 0);
  copy_bytes(udp + UDP_HEADER, payload, payload_length);
  uint16_t checksum = udp_checksum(net.ip, destination_ip, udp, udp_length);
  store_be16(udp + 6, checksum == 0 ? 0xFFFFu : checksum); /* 0 would mean "no checksum" */
  (void)e1000_transmit(&net.nic, out_frame, ETH_HEADER + IPV4_HEADER + udp_length);
}

static void handle_ipv4(const uint8_t* frame, uint32_t length) {
  if (length < ETH_HEADER + IPV4_HEADER) return;
  const uint8_t* ip = frame + ETH_HEADER;
  uint32_t header_length = (ip[0] & 0x0Fu) * 4;
  uint32_t total_length = load_be16(ip + 2);
  if ((ip[0] >> 4) != 4 || header_length < IPV4_HEADER || total_length < header_length ||
      ETH_HEADER + total_length > length) {
    return;
  }
  if (checksum_finish(checksum_add(0, ip, header_length)) != 0) return;
  if ((load_be16(ip + 6) & (IPV4_MORE_FRAGMENTS | IPV4_OFFSET_MASK)) != 0) return; /* no reassembly */
  if (ip[9] != IPV4_PROTO_UDP || load_be32(ip + 16) != net.ip) return;

  const uint8_t* udp = ip + header_length;
  uint32_t udp_length = total_length - header_length;
  if (udp_length < UDP_HEADER || load_be16(udp + 4) != udp_length || load_be16(udp + 2) != net.port) return;
  if (load_be16(udp + 6) != 0 && udp_checksum(load_be32(ip + 12), net.ip, udp, udp_length) != 0) return;
  const uint8_t* payload = udp + UDP_HEADER;
  if (udp_length - UDP_HEADER != REQUEST_BYTES || load_le32(payload) != REQUEST_MAGIC) return;

  uint8_t reply[REPLY_BYTES];
  serve(payload, reply);
  send_udp_reply(frame, header_length, reply, REPLY_BYTES);
}

static void handle_frame(const uint8_t* frame, uint32_t length) {
  if (length < ETH_HEADER) return;
  switch (load_be16(frame + 12)) {
    case ETH_TYPE_ARP:
      handle_arp(frame, length);
      break;
    case ETH_TYPE_IPV4:
      handle_ipv4(frame, length);
      break;
    default:
      break;
  }
}

/* ---- boot ---- */

/* Finds "key=A.B.C.D" in the command line; fallback when absent or malformed. */
static uint32_t cmdline_ipv4(const char* cmdline, const char* key, uint32_t fallback) {
  if (cmdline == 0) return fallback;
  for (const char* word = cmdline; *word != '\0'; ++word) {
    if (word != cmdline && word[-1] != ' ') continue;
    const char* at = word;
    const char* k = key;
    while (*k != '\0' && *at == *k) ++at, ++k;
    if (*k != '\0' || *at != '=') continue;
    ++at;
    uint32_t address = 0;
    for (int part = 0; part < 4; ++part) {
      if (part > 0 && *at++ != '.') return fallback;
      if (*at < '0' || *at > '9') return fallback;
      uint32_t octet = 0;
      for (int digits = 0; *at >= '0' && *at <= '9'; ++digits, ++at) {
        if (digits == 3) return fallback;
        octet = octet * 10 + (uint32_t)(*at - '0');
      }
      if (octet > 255) return fallback;
      address = (address << 8) | octet;
    }
    return (*at == '\0' || *at == ' ') ? address : fallback;
  }
  return fallback;
}

static void serial_write_hex8(uint8_t value) {
  static const char digits[] = "0123456789abcdef";
  char text[3] = {digits[value >> 4], digits[value & 0xFu], '\0'};
  serial_write(text);
}

static void print_boot_line(void) {
  serial_write("net_service: e1000 MAC ");
  for (int i = 0; i < E1000_MAC_BYTES; ++i) {
    if (i > 0) serial_write(":");
    serial_write_hex8(net.nic.mac[i]);
  }
  serial_write(", ip ");
  for (int i = 0; i < 4; ++i) {
    if (i > 0) serial_write(".");
    serial_write_u32((net.ip >> (24 - 8 * i)) & 0xFFu);
  }
  serial_write(" port ");
  serial_write_u32(net.port);
  serial_write("\n");
}

void guest_main(uint32_t magic, const struct multiboot_info* info) {
  serial_init();
  const char* cmdline = 0;
  if (magic == MULTIBOOT_BOOTLOADER_MAGIC && (info->flags & MULTIBOOT_INFO_CMDLINE) != 0) {
    cmdline = (const char*)info->cmdline;
  }
  net.ip = cmdline_ipv4(cmdline, "ip", DEFAULT_IP);
  uint32_t port = cmdline_u32(cmdline, "port", DEFAULT_PORT);
  net.port = (uint16_t)(port == 0 || port > 0xFFFFu ? DEFAULT_PORT : port);
  if (e1000_init(&net.nic) != 0) {
    serial_write("NET ERROR: no usable NIC, the service is not running\n");
    for (;;) __asm__ volatile("hlt");
  }
  print_boot_line();

  for (;;) {
    uint32_t length;
    const uint8_t* frame = e1000_receive(&net.nic, &length);
    if (frame == 0) continue;
    handle_frame(frame, length);
    e1000_release(&net.nic);
  }
}
