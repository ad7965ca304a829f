#!/usr/bin/env bash
# Prints the tshark figures of a demo capture (used for captures/README.md).
#   captures/figures.sh [captures/prod.pcap]
set -euo pipefail
F=${1:-$(dirname "$0")/prod.pcap}
T() { tshark -r "$F" "$@" 2>/dev/null; }
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
