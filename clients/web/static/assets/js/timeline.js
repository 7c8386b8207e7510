// timeline.js — the markers drawn on the Resources chart (offload/reload, start/stop), shared
// by the tabs that see them: the orchestrator's event stream, and the LLM and diffusion watch
// streams (whichever tab has them open). One marker per kind within a few seconds.

const WINDOW_MS = 5 * 60 * 1000;
const DEDUPE_MS = 4000;

export const MARKER_KINDS = {
  'llm-start': { label: 'LLM start', color: '#94d82d' },
  'llm-stop': { label: 'LLM stop', color: '#868e96' },
  'llm-crash': { label: 'LLM crash', color: '#e03131' },
  'diffusion-start': { label: 'SD start', color: '#1971c2' },
  'diffusion-stop': { label: 'SD stop', color: '#868e96' },
  'diffusion-crash': { label: 'SD crash', color: '#e03131' },
  'offload-start': { label: 'offload', color: '#f08c00' },
  'offload-done': { label: 'offloaded', color: '#f08c00' },
  'reload-start': { label: 'reload', color: '#0ca678' },
  'reload-done': { label: 'reloaded', color: '#0ca678' },
  'reload-failed': { label: 'reload failed', color: '#e03131' },
};

// Orchestrator event types → marker kinds.
const EVENT_KINDS = {
  EVENT_TYPE_LLM_STARTED: 'llm-start',
  EVENT_TYPE_LLM_STOPPED: 'llm-stop',
  EVENT_TYPE_LLM_CRASHED: 'llm-crash',
  EVENT_TYPE_DIFFUSION_STARTED: 'diffusion-start',
  EVENT_TYPE_DIFFUSION_STOPPED: 'diffusion-stop',
  EVENT_TYPE_DIFFUSION_CRASHED: 'diffusion-crash',
  EVENT_TYPE_OFFLOAD_STARTED: 'offload-start',
  EVENT_TYPE_OFFLOAD_FINISHED: 'offload-done',
  EVENT_TYPE_RELOAD_STARTED: 'reload-start',
  EVENT_TYPE_RELOAD_FINISHED: 'reload-done',
  EVENT_TYPE_RELOAD_FAILED: 'reload-failed',
};

// LLM and diffusion watch event types → marker kinds.
const WATCH_KINDS = {
  LLM_EVENT_TYPE_READY: 'llm-start',
  LLM_EVENT_TYPE_RESTARTED: 'llm-start',
  LLM_EVENT_TYPE_STOPPED: 'llm-stop',
  LLM_EVENT_TYPE_CRASHED: 'llm-crash',
  DIFFUSION_EVENT_TYPE_STARTED: 'diffusion-start',
  DIFFUSION_EVENT_TYPE_STOPPED: 'diffusion-stop',
  DIFFUSION_EVENT_TYPE_CRASHED: 'diffusion-crash',
};

/** Markers is the list of chart markers, newest last. */
export class Markers {
  constructor() {
    this.list = [];
    this.listeners = new Set();
  }

  onChange(fn) { this.listeners.add(fn); }

  add(kind, t, text) {
    if (!MARKER_KINDS[kind] || !Number.isFinite(t)) return;
    if (this.list.some((m) => m.kind === kind && Math.abs(m.t - t) < DEDUPE_MS)) return;
    this.list.push({ kind, t, text: text || MARKER_KINDS[kind].label });
    this.list.sort((a, b) => a.t - b.t);
    const cutoff = Date.now() - WINDOW_MS - 60000;
    while (this.list.length && this.list[0].t < cutoff) this.list.shift();
    for (const fn of this.listeners) fn();
  }

  /** fromEvent adds the marker for an orchestrator event, if it has one. */
  fromEvent(ev) {
    const kind = EVENT_KINDS[ev.type];
    if (kind) this.add(kind, Date.parse(ev.time), ev.message);
  }

  /** fromWatch adds the marker for an LLM or diffusion watch event, if it has one. */
  fromWatch(ev) {
    const kind = WATCH_KINDS[ev.type];
    if (kind) this.add(kind, ev.time ? Date.parse(ev.time) : Date.now(), ev.message);
  }
}

/** markers is the panel's one store. */
export const markers = new Markers();
