package io.clickmuncher.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;

/**
 * The streams benchmark's Kafka Streams peer: clicks counted per (URL, tumbling window) into a RocksDB
 * window store, held back by suppress until the window closes, then one record per (URL, window).
 *
 * <p>Usage: {@code ClickWindows BOOTSTRAP GUARANTEE WINDOW_S GRACE_S STATE_DIR EVENTS IN:OUT [IN:OUT...]}.
 * Each {@code IN:OUT} pair is one pass in this JVM, with a fresh application id. A pass prints
 * {@code {"pass": n, "started_ms": ...}} when it starts and runs until a line arrives on stdin, then prints
 * when it read its {@code EVENTS}-th input record and closes; the benchmark reads the output topics.
 */
public final class ClickWindows {
  /** A click as the gateway encodes it (bench/streams/load.py writes the same). */
  record Click(int v, String url, long ts_ms) {}

  /** One closed window: the key is {@code <window_start_ms>:<url>}, like clickmuncher's click-windows. */
  record Window(int v, String url, long window_start_ms, long window_end_ms, long clicks) {}

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ObjectReader CLICK = JSON.readerFor(Click.class);
  private static final ObjectWriter WINDOW = JSON.writerFor(Window.class);

  private final long events;
  private long seen;
  private volatile long lastInputMs;

  private ClickWindows(long events) {
    this.events = events;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String guarantee = args[1];
    Duration window = Duration.ofSeconds(Long.parseLong(args[2]));
    Duration grace = Duration.ofSeconds(Long.parseLong(args[3]));
    long events = Long.parseLong(args[5]);
    var stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (int pass = 1; pass + 5 < args.length; pass++) {
      String[] topics = args[pass + 5].split(":", 2);
      var counter = new ClickWindows(events);
      Properties config = config(bootstrap, guarantee, args[4], pass);
      long startedMs = System.currentTimeMillis();
      var streams = new KafkaStreams(counter.topology(topics[0], topics[1], window, grace), config);
      streams.setUncaughtExceptionHandler(e -> fail(e.toString()));
      streams.setStateListener((now, before) -> {
        if (now == KafkaStreams.State.ERROR) {
          fail("Kafka Streams entered ERROR from " + before);
        }
      });
      streams.start();
      System.out.printf("{\"pass\": %d, \"started_ms\": %d}%n", pass, startedMs);
      System.out.flush();
      stdin.readLine();
      streams.close(Duration.ofSeconds(60));
      System.out.printf("{\"pass\": %d, \"last_input_ms\": %d}%n", pass, counter.lastInputMs);
      System.out.flush();
    }
  }

  private static StreamThreadExceptionResponse fail(String reason) {
    System.err.println("kstreams: " + reason);
    System.exit(1);
    return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
  }

  static Properties config(String bootstrap, String guarantee, String stateDir, int pass) {
    var config = new Properties();
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    String id = "bench-kstreams-" + guarantee.replace('_', '-') + "-" + pass + "-" + suffix;
    config.put(StreamsConfig.APPLICATION_ID_CONFIG, id);
    config.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    config.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    config.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    if (guarantee.equals(StreamsConfig.AT_LEAST_ONCE)) {
      // The default (30 s) would hold the closed windows in the record cache for up to 30 s after the
      // last click; clickmuncher commits a batch after 1 s at the latest. Exactly-once keeps its 100 ms.
      config.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    }
    // Overrides (python -m bench.streams.run --kstreams-config): -Dclickwindows.config=key=value,...
    for (String setting : System.getProperty("clickwindows.config", "").split(",")) {
      String[] pair = setting.split("=", 2);
      if (pair.length == 2) {
        config.put(pair[0], pair[1]);
      }
    }
    return config;
  }

  Topology topology(String input, String output, Duration window, Duration grace) {
    var builder = new StreamsBuilder();
    builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
        .peek((url, raw) -> noteInput())
        .filter(ClickWindows::isClick)
        .groupByKey(Grouped.with(Serdes.String(), Serdes.ByteArray()))
        .windowedBy(TimeWindows.ofSizeAndGrace(window, grace))
        .count(Materialized.as("click-window-counts"))
        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()).withName("until-window-closes"))
        .toStream()
        .map(ClickWindows::windowRecord)
        .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
    return builder.build();
  }

  /** Runs on the one stream thread; the main thread reads the time when the pass closes. */
  private void noteInput() {
    if (++seen == events) {
      lastInputMs = System.currentTimeMillis();
    }
  }

  /** A record of {@code clicks} counts when it is a version-1 click of the URL it is keyed by. */
  static boolean isClick(String url, byte[] raw) {
    try {
      Click click = CLICK.readValue(raw);
      return click.v() == 1 && url != null && url.equals(click.url()) && click.ts_ms() >= 0;
    } catch (IOException e) {
      return false;
    }
  }

  static KeyValue<String, byte[]> windowRecord(Windowed<String> window, Long clicks) {
    long start = window.window().start();
    var value = new Window(1, window.key(), start, window.window().end(), clicks);
    try {
      return KeyValue.pair(start + ":" + window.key(), WINDOW.writeValueAsBytes(value));
    } catch (IOException e) {
      throw new IllegalStateException("cannot encode " + value, e);
    }
  }
}
