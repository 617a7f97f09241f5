# Plots bench/run.sh's data: gnuplot -e "dir='OUT'" bench/run.gp writes
# OUT/bench.png from OUT/chat_<store>.dat and OUT/streams_<store>.dat.
# chat_*.dat columns: conns rps p50_ms p99_ms gw_cpu_ms srv_cpu_ms errors
# streams_*.dat columns: streams ok failed wall_s fb_p50_ms fb_p99_ms
#   peak_rss_mib (gateway + server) rss_5s rss_10s rss_20s rss_30s
if (!exists("dir")) dir = "bench/out"
if (!exists("title")) title = "chatd: POST /chat and streams through chat-gateway"
set terminal pngcairo size 1650,520 font ",10"
set output dir."/bench.png"
set multiplot layout 1,3 title title
set grid
set key top left
set logscale x 2
set xlabel "connections"

set ylabel "req/s"
set yrange [0:*]
set title "/chat throughput"
plot dir."/chat_memory.dat" using 1:2 with linespoints lw 2 title "memory", \
     dir."/chat_sqlite.dat" using 1:2 with linespoints lw 2 title "SQLite (synchronous=FULL)"

set ylabel "p99 latency (ms)"
set title "/chat p99 latency"
set logscale y 10
set yrange [*:*]
plot dir."/chat_memory.dat" using 1:4 with linespoints lw 2 title "memory", \
     dir."/chat_sqlite.dat" using 1:4 with linespoints lw 2 title "SQLite (synchronous=FULL)"

unset logscale y
set logscale x 10
set xlabel "concurrent 1-s streams (20 tokens, 50 ms apart)"
set ylabel "wall time (s)"
set yrange [0:*]
set title "streams: wall time"
plot dir."/streams_memory.dat" using 1:4 with linespoints lw 2 title "memory", \
     dir."/streams_sqlite.dat" using 1:4 with linespoints lw 2 title "SQLite (synchronous=FULL)"
unset multiplot
