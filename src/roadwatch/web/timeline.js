// Detections and alerts per bucket over a chosen window, drawn with uPlot (served from the
// package, /static/vendor); the window also sets what the per-make counts cover.
import { request } from "./api.js";
import { $ } from "./dom.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
// Each window as buckets ending with the current one.
const WINDOWS = {
  hour: { bucket: "minute", size: MINUTE, count: 60, label: "last hour" },
  day: { bucket: "hour", size: HOUR, count: 24, label: "last 24 hours" },
  week: { bucket: "hour", size: HOUR, count: 168, label: "last 7 days" },
};

function shown(_u, value) {
  return value == null ? "" : value.toLocaleString();
}

export class Timeline {
  constructor({ guarded, onWindow }) {
    this.guarded = guarded;
    this.onWindow = onWindow;
    this.chart = null;
    $("window").addEventListener("change", () => {
      this.onWindow();
      this.refresh();
    });
    // The chart follows its card's width: a window resized, a phone turned.
    new ResizeObserver(() => this.fit()).observe($("timeline"));
  }

  fit() {
    const width = Math.max($("timeline").clientWidth, 280);
    if (this.chart && this.chart.width !== width) {
      this.chart.setSize({ width, height: this.chart.height });
    }
  }

  get window() {
    return WINDOWS[$("window").value] ?? WINDOWS.day;
  }

  // The window's first bucket: where the per-make counts start too (on a whole minute).
  since() {
    const { size, count } = this.window;
    return new Date((Math.floor(Date.now() / size) - count + 1) * size);
  }

  async refresh() {
    await this.guarded(async () => {
      const { bucket, label } = this.window;
      const params = new URLSearchParams({ bucket, since: this.since().toISOString() });
      const timeline = await request(`/stats/timeline?${params}`);
      const buckets = timeline.buckets;
      const data = [
        buckets.map((b) => Date.parse(b.start) / 1000),
        buckets.map((b) => b.detections),
        buckets.map((b) => b.alerts),
      ];
      const container = $("timeline");
      container.dataset.bucket = bucket;
      container.dataset.buckets = String(buckets.length);
      container.dataset.detections = String(data[1].reduce((sum, n) => sum + n, 0));
      container.dataset.alerts = String(data[2].reduce((sum, n) => sum + n, 0));
      $("timeline-label").textContent = `${label}, per ${bucket}`;
      this.draw(container, data);
    });
  }

  draw(container, data) {
    const width = Math.max(container.clientWidth, 280);
    if (this.chart && this.chart.width === width) {
      this.chart.setData(data);
      return;
    }
    this.chart?.destroy();
    this.chart = new globalThis.uPlot(
      {
        width,
        height: 220,
        // The legend gives the values under the cursor, and nothing when there is none.
        series: [
          { label: "time", value: (_u, at) => (at == null ? "" : new Date(at * 1000).toLocaleString()) },
          { label: "detections", stroke: "#2457c5", fill: "#2457c51f", width: 2, value: shown },
          { label: "alerts", stroke: "#c2410c", width: 2, scale: "alerts", value: shown },
        ],
        axes: [{}, { label: "detections" }, { side: 1, scale: "alerts", label: "alerts", grid: { show: false } }],
        scales: { alerts: { range: (_u, _min, max) => [0, Math.max(max, 1)] } },
      },
      data,
      container,
    );
  }

  stop() {
    this.chart?.destroy();
    this.chart = null;
  }
}
