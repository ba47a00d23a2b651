# shellcheck shell=bash disable=SC2154 # sourced by run-peers.sh, whose settings it uses
# The "loop" and "coro" sections of bench/run-peers.sh (5 and 7): the loop's and
# the coroutines' microbenchmarks beside their peers'. Sourced by run-peers.sh
# after its settings and helpers; run_loop_section and run_coro_section run them.

# Google Benchmark's CSV on stdin -> records, with each benchmark's case name.
gbench_rows() { # workload peer rep
  local workload=$1 peer=$2 rep=$3 name rate
  while IFS=, read -r name _ _ _ _ _ rate _; do
    name=${name//\"/}
    case "$name" in
      BM_CallSoonChain | BM_PostChain | BM_CallSoonChainReference) name=call_soon_chain ;;
      BM_CallSoonBatch/* | BM_PostBatch/*) name=call_soon_batch ;;
      BM_TimersScheduledAndFired/*) name=timers_fired ;;
      BM_TimerScheduleCancel) name=schedule_cancel ;;
      BM_FutureResolveAndCallback) name=future_callback ;;
      BM_TaskCreateAndRun) name=task_create_and_run ;;
      BM_AwaitDoneFuture) name=await_done_future ;;
      BM_SleepZeroChain) name=sleep_zero_chain ;;
      BM_QueuePingPong) name=queue_ping_pong ;;
      BM_AwaitInlineCoroutine) name=await_inline ;;
      *) continue ;;
    esac
    echo "$workload,$name,$peer,$rep,items_per_s,$rate" >>"$csv"
  done
}
# "bench=NAME items_per_s=R" lines on stdin -> records.
plain_rows() { # workload peer rep
  local workload=$1 peer=$2 rep=$3 line
  while read -r line; do
    echo "$workload,$(value_of bench "$line"),$peer,$rep,items_per_s,$(value_of items_per_s "$line")" >>"$csv"
  done
}

# ---- 5: loop overhead microbenchmarks --------------------------------------------------
run_loop_section() {
  local rep
  for rep in $(seq "$reps"); do
    "${pin_load[@]}" "$build/bench/tulip-bench-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows loop tulip "$rep"
    "${pin_load[@]}" "$bin/bench-asio-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows loop asio "$rep"
    "${pin_load[@]}" "$bin/bench-uv-loop" | plain_rows loop libuv "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop uvloop --scale "$py_loop_scale" |
      plain_rows loop uvloop "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop asyncio --scale "$py_loop_scale" |
      plain_rows loop asyncio "$rep"
    progress "loop microbenchmarks rep $rep/$reps"
  done
}

# ---- 7: coroutine microbenchmarks ----------------------------------------------------
# tulip-bench-coro and bench-asio-coro (Google Benchmark, the same case names)
# and py_coro_bench.py on uvloop and asyncio; rates per CPU-second.
run_coro_section() {
  local rep
  for rep in $(seq "$reps"); do
    "${pin_load[@]}" "$build/bench/tulip-bench-coro" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/coro.log" | gbench_rows coro tulip "$rep"
    "${pin_load[@]}" "$bin/bench-asio-coro" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/coro.log" | gbench_rows coro asio "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_coro_bench.py --loop uvloop --scale "$py_coro_scale" |
      plain_rows coro uvloop "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_coro_bench.py --loop asyncio --scale "$py_coro_scale" |
      plain_rows coro asyncio "$rep"
    progress "coroutine microbenchmarks rep $rep/$reps"
  done
}
