/*
 * The delivery dashboard: reads Prometheus's HTTP API on its own origin
 * and draws the metrics of docs/monitoring.md with Chart.js.
 *
 * Flow: refresh() asks every query of the selected range at once, then
 * fills the tiles (totals over the range, computed exactly from the raw
 * counters), the charts, the tables of shards, of clients and of failing
 * destinations. Failovers
 * (pb_redis_master_changes_total rising) are dashed lines on every chart.
 * When the first refresh is drawn, <body data-ready="1"> says so (the
 * headless test waits for it); any error is listed in #errors.
 */
"use strict";

const API = "../api/v1/";      /* /user/ is Prometheus's; the API is beside it */
const REFRESH_MS = 15000;
const POINTS = 240;            /* points a chart has across the range, about */
const COLORS = { delivered: "#16a34a", retry: "#f59e0b", dead: "#dc2626",
		 waiting: "#2563eb", scheduled: "#f59e0b", in_flight: "#7c3aed",
		 p50: "#2563eb", p90: "#7c3aed", p99: "#dc2626", success: "#16a34a",
		 failure: "#dc2626", take: "#2563eb", attempt: "#7c3aed",
		 record: "#f59e0b", enqueue: "#6b7280", oldest: "#dc2626" };

/* Series whose label values are not known in advance (the shards). */
const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#7c3aed", "#dc2626", "#0891b2",
		 "#db2777", "#65a30d", "#9333ea", "#ea580c", "#475569", "#111827"];

const state = { failovers: [], charts: {} };

/* ---- errors: shown on the page, where the test and an operator see them */

function report(msg) {
	const li = document.createElement("li");
	li.textContent = msg;
	document.getElementById("errors").appendChild(li);
}
window.addEventListener("error", e => report("error: " + e.message));
window.addEventListener("unhandledrejection", e => report("error: " + e.reason));

/* ---- Prometheus ------------------------------------------------------- */

async function api(path, params) {
	const r = await fetch(API + path + "?" + new URLSearchParams(params));
	const body = await r.json();
	if (body.status !== "success")
		throw new Error(`${path} ${params.query}: ${body.error}`);
	return body.data.result;
}
const instant = query => api("query", { query });
const series = (query, w) => api("query_range", { query, start: w.start, end: w.end,
						  step: w.step });

/* A number from Prometheus ("NaN", "+Inf" included), null when not one. */
function num(s) {
	const v = Number(s);
	return Number.isFinite(v) ? v : null;
}

/*
 * What a counter grew by over the range, from its raw samples: the sum of
 * its rises, a drop being a restart (all of the new value is growth), and
 * all of its first value if it began inside the range (counters start at 0).
 */
function growth(values, start) {
	let g = 0;
	values.forEach(([t, v], i) => {
		v = Number(v);
		if (i === 0) {
			if (t > start)
				g += v;
			return;
		}
		const prev = Number(values[i - 1][1]);
		g += v >= prev ? v - prev : v;
	});
	return g;
}

/* Sum of growth() per value of a label. */
function growthBy(result, label, start) {
	const out = {};
	for (const s of result) {
		const k = s.metric[label] || "";
		out[k] = (out[k] || 0) + growth(s.values, start);
	}
	return out;
}

/* Times where a counter rose (from 0 if it began inside the range, as
 * growth() counts), a minute apart. */
function rises(result, start) {
	const times = [];
	for (const s of result)
		s.values.forEach(([t, v], i) => {
			const prev = i > 0 ? Number(s.values[i - 1][1]) : t > start ? 0 : Number(v);
			if (Number(v) > prev)
				times.push(t * 1000);
		});
	times.sort((a, b) => a - b);
	return times.filter((t, i) => i === 0 || t - times[i - 1] > 60000);
}

/* ---- formatting ------------------------------------------------------- */

const pad = n => String(n).padStart(2, "0");
function clock(ms, seconds) {
	const d = new Date(ms);
	return `${pad(d.getHours())}:${pad(d.getMinutes())}` +
		(seconds ? `:${pad(d.getSeconds())}` : "");
}
function duration(s) {
	if (s === null) return "–";
	if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
	if (s < 7200) return `${(s / 60).toFixed(0)} min`;
	return `${(s / 3600).toFixed(1)} h`;
}
const count = v => v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en");
const percent = v => v === null ? "–" : `${(100 * v).toFixed(1)} %`;
function setText(id, text) {
	document.getElementById(id).textContent = text;
}

/* ---- charts ----------------------------------------------------------- */

/* Dashed red lines where failovers happened, on every time chart. */
Chart.register({
	id: "failovers",
	afterDatasetsDraw(chart) {
		const x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
		ctx.save();
		ctx.strokeStyle = ctx.fillStyle = COLORS.dead;
		ctx.setLineDash([5, 4]);
		for (const t of state.failovers) {
			const px = x.getPixelForValue(t);
			if (px < area.left || px > area.right)
				continue;
			ctx.beginPath();
			ctx.moveTo(px, area.top);
			ctx.lineTo(px, area.bottom);
			ctx.stroke();
			ctx.fillText("failover", px + 3, area.top + 10);
		}
		ctx.restore();
	},
});

function draw(id, w, datasets, opts = {}) {
	const data = { datasets: datasets.map(d => ({
		label: d.label, data: d.points,
		borderColor: COLORS[d.color] || d.color || "#111",
		backgroundColor: (COLORS[d.color] || d.color || "#111") + "33",
		borderDash: d.dash ? [4, 3] : [],
		fill: !!opts.stacked, pointRadius: 0, borderWidth: 1.5, spanGaps: false,
	})) };
	const options = {
		animation: false, responsive: true, maintainAspectRatio: false,
		parsing: false, normalized: true,
		scales: {
			x: { type: "linear", min: w.start * 1000, max: w.end * 1000,
			     ticks: { callback: v => clock(v, w.range <= 900), maxTicksLimit: 8 } },
			y: { beginAtZero: true, stacked: !!opts.stacked, max: opts.max },
		},
		plugins: { legend: { position: "bottom" } },
	};
	if (state.charts[id]) {
		state.charts[id].data = data;
		state.charts[id].options = options;
		state.charts[id].update();
		return;
	}
	const canvas = document.getElementById(id);
	canvas.parentElement.style.height = "280px";
	state.charts[id] = new Chart(canvas, { type: "line", data, options });
}

/* One result's series as points; with byLabel, one dataset per value. */
function points(s) {
	return s.values.map(([t, v]) => ({ x: t * 1000, y: num(v) }));
}
function datasetsBy(result, label) {
	return result.map(s => ({ label: s.metric[label] || label, color: s.metric[label],
				  points: points(s) }))
		.sort((a, b) => a.label.localeCompare(b.label));
}
function one(result, label, color) {
	return { label, color, points: result.length ? points(result[0]) : [] };
}

/* ---- the page --------------------------------------------------------- */

function window_() {
	const range = Number(document.getElementById("range").value);
	const end = Math.floor(Date.now() / 1000);
	const step = Math.max(2, Math.ceil(range / POINTS));
	return { range, end, start: end - range, step, rate: `${Math.max(30, 4 * step)}s` };
}

function quantile(q, metric, w) {
	return series(`histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket[${w.rate}])))`, w);
}
function mean(metric, w) {
	return series(`sum(rate(${metric}_sum[${w.rate}])) / sum(rate(${metric}_count[${w.rate}]))`, w);
}

async function refresh() {
	const w = window_();
	const q = {
		attempts: series("pb_delivery_attempts_total", w),
		accepted: series("pb_postbacks_accepted_total", w),
		changes: series("pb_redis_master_changes_total", w),
		queueNow: instant("max by (state) (pb_queue_postbacks)"),
		oldestNow: instant("max(pb_queue_oldest_waiting_seconds)"),
		volume: series(`sum by (outcome) (rate(pb_delivery_attempts_total[${w.rate}]))`, w),
		success: series(`sum(rate(pb_delivery_attempts_total{outcome="delivered"}[${w.rate}]))
			/ sum(rate(pb_delivery_attempts_total[${w.rate}]))`, w),
		a50: quantile(0.5, "pb_delivery_attempt_seconds", w),
		a90: quantile(0.9, "pb_delivery_attempt_seconds", w),
		a99: quantile(0.99, "pb_delivery_attempt_seconds", w),
		l50: quantile(0.5, "pb_delivery_latency_seconds", w),
		l99: quantile(0.99, "pb_delivery_latency_seconds", w),
		queue: series("max by (state) (pb_queue_postbacks)", w),
		oldest: series("max(pb_queue_oldest_waiting_seconds)", w),
		take: mean("pb_take_seconds", w),
		attempt: mean("pb_delivery_attempt_seconds", w),
		record: mean("pb_record_seconds", w),
		enqueue: mean("pb_ingest_enqueue_seconds", w),
		dests: series("pb_delivery_destination_attempts_total", w),
		shardTaken: series("pb_ingest_shard_taken_total", w),
		shardPassed: series("pb_ingest_shard_passed_total", w),
		shardTakenRate: series(`sum by (shard) (rate(pb_ingest_shard_taken_total[${w.rate}]))`, w),
		shardPassedRate: series(`sum by (shard) (rate(pb_ingest_shard_passed_total[${w.rate}]))`, w),
		shardWaiting: instant("sum by (shard) (pb_queue_shard_waiting)"),
		clientAccepted: series("pb_ingest_client_postbacks_total", w),
		clientAttempts: series("pb_delivery_client_attempts_total", w),
	};
	const r = {};
	await Promise.all(Object.entries(q).map(async ([k, p]) => { r[k] = await p; }));

	state.failovers = rises(r.changes, w.start);
	tiles(r, w);
	draw("chart-volume", w, datasetsBy(r.volume, "outcome"), { stacked: true });
	const ok = one(r.success, "success", "success");
	draw("chart-rate", w, [ok, { label: "failure", color: "failure",
		points: ok.points.map(p => ({ x: p.x, y: p.y === null ? null : 1 - p.y })) }],
	     { max: 1 });
	draw("chart-attempt", w, [one(r.a50, "p50", "p50"), one(r.a90, "p90", "p90"),
			       one(r.a99, "p99", "p99")]);
	draw("chart-latency", w, [one(r.l50, "p50", "p50"), one(r.l99, "p99", "p99")]);
	draw("chart-queue", w, datasetsBy(r.queue, "state").filter(d => d.label !== "dead"));
	draw("chart-oldest", w, [one(r.oldest, "oldest waiting", "oldest")]);
	draw("chart-where", w, [one(r.take, "take (Redis)", "take"),
			     one(r.attempt, "attempt (HTTP)", "attempt"),
			     one(r.record, "record (Redis)", "record"),
			     one(r.enqueue, "ingest enqueue", "enqueue")]);
	draw("chart-shards", w, shardDatasets(r));
	shards(r, w);
	clients(r, w);
	failing(r.dests, w);
	setText("updated", `updated ${new Date().toLocaleTimeString("en-GB")}`);
}

function tiles(r, w) {
	const by = growthBy(r.attempts, "outcome", w.start);
	const d = by.delivered || 0, rt = by.retry || 0, dd = by.dead || 0;
	const queue = {};
	for (const s of r.queueNow)
		queue[s.metric.state] = num(s.value[1]);
	setText("total-delivered", count(d));
	setText("total-retry", count(rt));
	setText("total-dead", count(dd));
	setText("success-rate", d + rt + dd ? percent(d / (d + rt + dd)) : "–");
	setText("total-accepted", count(r.accepted.reduce((a, s) => a + growth(s.values, w.start), 0)));
	setText("queue-waiting", count(queue.waiting));
	setText("queue-oldest", duration(r.oldestNow.length ? num(r.oldestNow[0].value[1]) : null));
	setText("queue-inflight", `${count(queue.in_flight)} / ${count(queue.scheduled)}`);
	setText("queue-dead", count(queue.dead));
	setText("failovers", count(state.failovers.length));
}

/* The shards' names, in the order the ingest nodes list them (first seen). */
function shardNames(r) {
	const names = [];
	for (const s of [...r.shardTaken, ...r.shardPassed, ...r.shardWaiting])
		if (s.metric.shard && !names.includes(s.metric.shard))
			names.push(s.metric.shard);
	return names;
}

/* Per shard: requests taken (solid) and passed over (dashed), one colour a shard. */
function shardDatasets(r) {
	const names = shardNames(r);
	const color = name => PALETTE[names.indexOf(name) % PALETTE.length];
	const out = [];
	for (const s of r.shardTakenRate)
		out.push({ label: `${s.metric.shard} taken`, color: color(s.metric.shard),
			   points: points(s) });
	for (const s of r.shardPassedRate)
		out.push({ label: `${s.metric.shard} passed over`, color: color(s.metric.shard),
			   points: points(s), dash: true });
	return out;
}

/* A table of rows (arrays of cells) into tbody, or one row saying none. */
function fillTable(selector, rows, none) {
	const body = document.querySelector(selector);
	const columns = body.parentElement.querySelectorAll("thead th").length;
	const empty = [none, ...Array(columns - 1).fill("")];
	body.replaceChildren(...(rows.length ? rows : [empty]).map(cells => {
		const tr = document.createElement("tr");
		for (const c of cells) {
			const td = document.createElement("td");
			td.textContent = c;
			tr.appendChild(td);
		}
		return tr;
	}));
}

/* Each shard: requests it took and passed over in the range, waiting now. */
function shards(r, w) {
	const taken = growthBy(r.shardTaken, "shard", w.start);
	const passed = growthBy(r.shardPassed, "shard", w.start);
	const waiting = {};
	for (const s of r.shardWaiting)
		waiting[s.metric.shard] = num(s.value[1]);
	fillTable("#shards tbody", shardNames(r).map(name => [name, count(taken[name] || 0),
		count(passed[name] || 0), count(waiting[name])]), "no shard reported");
}

/* The twenty clients with the most postbacks accepted in the range: what
 * became of them (attempts by outcome; "" is a request without a key). */
function clients(r, w) {
	const accepted = growthBy(r.clientAccepted, "client", w.start);
	const by = {};
	for (const s of r.clientAttempts) {
		const row = by[s.metric.client] ||= {};
		row[s.metric.outcome] = (row[s.metric.outcome] || 0) + growth(s.values, w.start);
	}
	const names = [...new Set([...Object.keys(accepted), ...Object.keys(by)])]
		.filter(c => Math.round(accepted[c] || 0) + Object.values(by[c] || {})
			.reduce((a, v) => a + Math.round(v), 0) > 0)
		.sort((a, b) => (accepted[b] || 0) - (accepted[a] || 0)).slice(0, 20);
	fillTable("#clients tbody", names.map(c => [c === "" ? "(no key)" : c,
		count(accepted[c] || 0), count(by[c]?.delivered || 0),
		count(by[c]?.retry || 0), count(by[c]?.dead || 0)]), "no client reported");
}

/* The ten destinations with the most failed attempts (retry or dead). */
function failing(result, w) {
	const rows = {};
	for (const s of result) {
		const row = rows[s.metric.destination] ||= { all: 0, failed: 0 };
		const v = growth(s.values, w.start);
		row.all += v;
		if (s.metric.outcome !== "delivered")
			row.failed += v;
	}
	const top = Object.entries(rows).filter(([, x]) => Math.round(x.failed) > 0)
		.sort((a, b) => b[1].failed - a[1].failed).slice(0, 10);
	fillTable("#failing tbody", top.map(([dest, x]) =>
		[dest, count(x.failed), count(x.all), percent(x.failed / x.all)]), "none failing");
}

async function loop() {
	try {
		await refresh();
	} catch (e) {
		report(String(e));
	}
	document.body.dataset.ready = "1";
}

document.getElementById("range").addEventListener("change", loop);
loop();
setInterval(loop, REFRESH_MS);
