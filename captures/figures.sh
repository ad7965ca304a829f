#!/usr/bin/env bash
# Prints the tshark figures of a demo capture (used for captures/README.md).
#   captures/figures.sh [captures/prod.pcap]
set -euo pipefail
F=${1:-$(dirname "$0")/prod.pcap}
# tshark 4.0 has no TLS port registration for 8443 and finds TLS there only by
# heuristics, which lose to a dissector registered on the client's ephemeral port
# (34980 is EtherCAT's): decode :8443 as TLS explicitly.
T() { tshark -r "$F" -d tcp.port==8443,tls "$@" 2>/dev/null; }
echo "tshark: $(tshark --version | head -1)"
capinfos -M -t -E -c -s -u -a -e -i "$F" | sed -e '1d' -e 's/  */ /g'
echo "packets (frames):                  $(T -T fields -e frame.number | wc -l)"
echo "TCP segments:                      $(T -Y tcp -T fields -e frame.number | wc -l)"
echo "ARP frames:                        $(T -Y arp -T fields -e frame.number | wc -l)"
echo "TCP conversations (conv,tcp rows): $(T -q -z conv,tcp | grep -c '<->')"
echo "SYN (connections opened):          $(T -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e frame.number | wc -l)"
echo "http.request frames (-Y http.request | wc -l): $(T -Y http.request | wc -l)"
echo "HTTP requests (messages):          $(T -Y http.request -T fields -e http.request.method | tr ',' '\n' | grep -c .)"
echo "HTTP responses (messages):         $(T -Y http.response -T fields -e http.response.code | tr ',' '\n' | grep -c .)"
echo "retransmissions / lost / dup-ack:  $(T -Y tcp.analysis.retransmission | wc -l) / $(T -Y tcp.analysis.lost_segment | wc -l) / $(T -Y tcp.analysis.duplicate_ack | wc -l)"
echo
echo "requests per server IP:port (client IP -> server IP:port, count):"
T -Y http.request -T fields -e ip.src -e ip.dst -e tcp.dstport | awk '{printf "  %-11s -> %s:%s\n", $1, $2, $3}' | sort | uniq -c | sort -k4,4 -k2,2
echo
echo "connections (SYNs) per link:"
T -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e ip.src -e ip.dst -e tcp.dstport | awk '{printf "  %-11s -> %s:%s\n", $1, $2, $3}' | sort | uniq -c | sort -k4,4 -k2,2
echo
echo "requests with a traceparent header (any case) per link:"
T -Y 'http.request && http.request.line matches "(?i)^traceparent:"' -T fields -e ip.src -e ip.dst -e tcp.dstport | awk '{printf "  %-11s -> %s:%s\n", $1, $2, $3}' | sort | uniq -c | sort -k4,4 -k2,2
echo
echo "response codes per server (server IP:port, code, count):"
T -Y http.response -T fields -e ip.src -e tcp.srcport -e http.response.code | awk '{printf "  %s:%s %s\n", $1, $2, $3}' | sort | uniq -c | sort -k2,2 -k3,3
echo
echo "gzip-encoded responses: $(T -Y 'http.content_encoding == "gzip"' | wc -l)"
echo
echo "tshark -q -z http_req,tree (requests by HTTP Host; the URI rows are left out):"
T -q -z http_req,tree | awk '/^HTTP Requests by HTTP Host/ {print "  all hosts", $6} /^ [^ ]/ {print "  " $1, $2}'
echo
echo "RSTs per sender (sender IP -> peer IP:port, count):"
T -Y 'tcp.flags.reset==1' -T fields -e ip.src -e ip.dst -e tcp.dstport | awk '{printf "  %-11s -> %s:%s\n", $1, $2, $3}' | sort | uniq -c
echo
echo "mean response time per link (http.time, ms; client IP -> server IP:port):"
T -Y http.response -T fields -e ip.dst -e ip.src -e tcp.srcport -e http.time \
    | awk '{k=sprintf("%-11s -> %s:%s", $1, $2, $3); s[k]+=$4; n[k]++} END {for (k in s) printf "  %s %7.1f ms (%d)\n", k, 1000*s[k]/n[k], n[k]}' | sort -k3,3
echo
# trace context: every trace id inside the mesh should come from the client
# (10.77.0.2), and no internal hop should reuse the client's span id
echo "traceparent on internal links (not from 10.77.0.2):"
T -Y 'http.request' -T fields -e ip.src -e http.request.line -E occurrence=a -E aggregator='|' \
    | awk -F'\t' '{ if (!match(tolower($2), /traceparent: 00-[0-9a-f]+-[0-9a-f]+/)) next
                    split(substr($2, RSTART + 16, RLENGTH - 16), p, "-")
                    if ($1 == "10.77.0.2") { tid[p[1]] = 1; sid[p[2]] = 1 } else { n++; t[n] = p[1]; s[n] = p[2] } }
                  END { for (i = 1; i <= n; i++) { if (!(t[i] in tid)) bad++; if (s[i] in sid) reused++ }
                        printf "  %d requests, trace id not from the client: %d, client span id reused: %d\n", n, bad, reused }'
echo
# TLS. One pass: per TCP stream its SYN's link, frames, bytes, duration and
# whether it has a ClientHello
echo "TLS connections per link (streams with a ClientHello; count, client IP -> server IP:port, frames, bytes, mean duration):"
T -Y tcp -T fields -E occurrence=a -E aggregator=, -e tcp.stream -e frame.len -e tcp.flags.syn -e tcp.flags.ack \
    -e ip.src -e ip.dst -e tcp.dstport -e tls.handshake.type -e frame.time_relative \
    | awk -F'\t' '{ fr[$1]++; by[$1] += $2; if (!($1 in t0)) t0[$1] = $9; t1[$1] = $9
                    if ($3 == 1 && $4 == 0) link[$1] = sprintf("%-11s -> %s:%s", $5, $6, $7)
                    if ((","$8",") ~ /,1,/) ch[$1] = 1 }
                  END { for (k in ch) { l = (k in link) ? link[k] : "(no SYN seen)"; c[l]++; f[l] += fr[k]; b[l] += by[k]; d[l] += t1[k] - t0[k] }
                        for (l in c) printf "  %d  %s  %d frames, %d bytes, %.1f ms\n", c[l], l, f[l], b[l], 1000 * d[l] / c[l] }'
echo "ClientHellos:                      $(T -Y 'tls.handshake.type==1' | wc -l)"
echo "ServerHellos:                      $(T -Y 'tls.handshake.type==2' | wc -l)"
echo "resumed (ServerHello with pre_shared_key): $(T -Y 'tls.handshake.type==2 && tls.handshake.extension.type==41' | wc -l)"
echo "SNI values in ClientHellos (count, server_name):"
T -Y 'tls.handshake.type==1' -T fields -e tls.handshake.extensions_server_name | sed 's/^$/(none)/' | sort | uniq -c
echo "negotiated versions (ServerHello supported_version, else its version field):"
T -Y 'tls.handshake.type==2' -T fields -e tls.handshake.extensions.supported_version -e tls.handshake.version \
    | awk '{v = ($1 != "") ? $1 : $2; n[v]++} END {for (v in n) {name = v; if (v == "0x0304") name = "TLS 1.3"; if (v == "0x0303") name = "TLS 1.2"; printf "  %d %s (%s)\n", n[v], name, v}}'
echo "cipher suites chosen (ServerHello):"
T -Y 'tls.handshake.type==2' -T fields -e tls.handshake.ciphersuite | sort | uniq -c
