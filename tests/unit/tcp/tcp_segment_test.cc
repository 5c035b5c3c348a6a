// Building and parsing TCP segments over real mbufs.
#include <gtest/gtest.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <cstring>
#include <string>

#include "dataplane/tcp/tcp_segment.h"
#include "tests/unit/dataplane/eal_env.h"

namespace terminus::tcp {
namespace {

using terminus::testing::EalEnvironment;

const FourTuple kTuple{0xc6120002, 0xc6120001, 443, 40000};

Route route() {
    Route r{};
    r.src_mac = rte_ether_addr{{2, 0, 0, 0, 0, 1}};
    r.dst_mac = rte_ether_addr{{2, 0, 0, 0, 0, 2}};
    return r;
}

// The segment as the peer receives it: local and remote swap.
Segment parse_as_peer(rte_mbuf* m, ParseResult expect = ParseResult::kOk) {
    Segment s;
    EXPECT_EQ(parse_segment(m, sizeof(rte_ipv4_hdr), s), expect);
    return s;
}

TEST(TcpSegment, BuiltSegmentParsesBackFieldByField) {
    const std::string payload = "hello, terminus";
    SynOptions so;
    so.mss = 1460;
    so.timestamps = true;
    so.ts_val = 77;
    uint8_t opts[kMaxSynOptionsLen];
    OutSegment out;
    out.tuple = kTuple;
    out.seq = 0xfffffff0;
    out.ack = 12345;
    out.window = 65535;
    out.flags = kSyn | kAck;
    out.options = opts;
    out.options_len = static_cast<uint8_t>(write_syn_options(opts, so));
    out.payload = reinterpret_cast<const uint8_t*>(payload.data());
    out.payload_len = static_cast<uint32_t>(payload.size());
    rte_mbuf* m = build_segment(EalEnvironment::pool(), route(), out);
    ASSERT_NE(m, nullptr);
    Segment s = parse_as_peer(m);
    EXPECT_EQ(s.tuple.local_ip, kTuple.remote_ip);
    EXPECT_EQ(s.tuple.remote_ip, kTuple.local_ip);
    EXPECT_EQ(s.tuple.local_port, kTuple.remote_port);
    EXPECT_EQ(s.tuple.remote_port, kTuple.local_port);
    EXPECT_EQ(s.seq, 0xfffffff0u);
    EXPECT_EQ(s.ack, 12345u);
    EXPECT_EQ(s.window, 65535);
    EXPECT_EQ(s.flags, kSyn | kAck);
    EXPECT_EQ(s.options.mss, 1460);
    EXPECT_EQ(s.options.ts_val, 77u);
    ASSERT_EQ(s.payload_len, payload.size());
    EXPECT_EQ(std::string(rte_pktmbuf_mtod_offset(m, const char*, s.payload_offset), s.payload_len),
              payload);
    EXPECT_EQ(s.seg_len(), payload.size() + 1);
    // The IPv4 header is valid too, with DF set for path MTU discovery.
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    EXPECT_EQ(rte_ipv4_cksum(ip), 0);
    EXPECT_TRUE(rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_DF_FLAG);
    rte_pktmbuf_free(m);
}

TEST(TcpSegment, CorruptedPayloadFailsTheChecksum) {
    const char payload[] = "data";
    OutSegment out;
    out.tuple = kTuple;
    out.flags = kAck;
    out.payload = reinterpret_cast<const uint8_t*>(payload);
    out.payload_len = 4;
    rte_mbuf* m = build_segment(EalEnvironment::pool(), route(), out);
    ASSERT_NE(m, nullptr);
    rte_pktmbuf_mtod_offset(m, uint8_t*, rte_pktmbuf_data_len(m) - 1)[0] ^= 0x40;
    parse_as_peer(m, ParseResult::kBadChecksum);
    rte_pktmbuf_free(m);
}

TEST(TcpSegment, DataOffsetBelowFiveIsABadHeader) {
    OutSegment out;
    out.tuple = kTuple;
    out.flags = kAck;
    rte_mbuf* m = build_segment(EalEnvironment::pool(), route(), out);
    ASSERT_NE(m, nullptr);
    auto* th = rte_pktmbuf_mtod_offset(m, rte_tcp_hdr*, sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr));
    th->data_off = 4 << 4;
    parse_as_peer(m, ParseResult::kBadHeader);
    th->data_off = 15 << 4;  // 60 bytes of header in a 20-byte segment
    parse_as_peer(m, ParseResult::kBadHeader);
    rte_pktmbuf_free(m);
}

TEST(TcpSegment, MalformedOptionsAreReported) {
    const uint8_t bad[4] = {2, 8, 0, 0};  // MSS claiming 8 bytes
    OutSegment out;
    out.tuple = kTuple;
    out.flags = kSyn;
    out.options = bad;
    out.options_len = 4;
    rte_mbuf* m = build_segment(EalEnvironment::pool(), route(), out);
    ASSERT_NE(m, nullptr);
    parse_as_peer(m, ParseResult::kBadOptions);
    rte_pktmbuf_free(m);
}

TEST(TcpSegment, SegmentLargerThanAnMbufIsNotBuilt) {
    static uint8_t big[4096];
    OutSegment out;
    out.tuple = kTuple;
    out.flags = kAck;
    out.payload = big;
    out.payload_len = sizeof big;
    EXPECT_EQ(build_segment(EalEnvironment::pool(), route(), out), nullptr);
}

TEST(TcpSegment, FinAndSynEachTakeOneSequenceNumber) {
    Segment s;
    s.flags = kSyn | kFin;
    s.payload_len = 10;
    EXPECT_EQ(s.seg_len(), 12u);
}

}  // namespace
}  // namespace terminus::tcp

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new terminus::testing::EalEnvironment);
    return RUN_ALL_TESTS();
}
