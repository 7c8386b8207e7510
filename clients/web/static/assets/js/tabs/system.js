// System tab: CPU, RAM, disk, each GPU with its VRAM, the driver, and the recommended threads.

import * as api from '../api.js';
import { h, replace, card, field, bytes, num, busy } from '../dom.js';

export function createSystemTab(app) {
  const body = h('div.system-body', h('p.muted', 'Loading system information…'));
  const refresh = h('button.btn.btn-secondary#system-refresh', { type: 'button' }, 'Refresh');
  const el = h('div.tab.system-info',
    h('div.tab-head', h('h2', 'System Information'), refresh),
    body);

  async function load() {
    try {
      const s = await api.get('/v1/system');
      render(s);
    } catch (err) {
      app.notices.error('Load system information (GET /v1/system)', err);
      replace(body, h('p.error-message', `Could not load system information: ${err.message}`));
    }
  }
  refresh.addEventListener('click', () => busy(refresh, load, 'Refreshing…'));

  function render(s) {
    const cpu = s.cpu || {};
    const mem = s.memory || {};
    const disk = s.disk || {};
    const gpus = s.gpus || [];
    const memUsed = num(mem.totalBytes) - num(mem.availableBytes);
    replace(body,
      h('div.grid-2',
        card('Host', { id: 'system-host' },
          h('div.status-grid',
            field('Hostname', s.hostname),
            field('Operating system', s.os))),
        card('CPU', { id: 'system-cpu' },
          h('div.status-grid',
            field('Model', cpu.model),
            field('Physical cores', cpu.physicalCores),
            field('Logical cores', cpu.logicalCores),
            field('Recommended threads', cpu.recommendedThreads, { props: { id: 'recommended-threads' } })))),
      h('div.grid-2',
        card('Memory (RAM)', { id: 'system-memory' },
          h('div.status-grid',
            field('Total', bytes(mem.totalBytes)),
            field('Available', bytes(mem.availableBytes)),
            field('Used', `${bytes(memUsed)} (${pct(memUsed, mem.totalBytes)})`),
            field('Swap', num(mem.swapTotalBytes) ? `${bytes(mem.swapUsedBytes)} of ${bytes(mem.swapTotalBytes)}` : 'none'))),
        card('Data disk', { id: 'system-disk' },
          h('div.status-grid',
            field('Path', disk.path),
            field('Size', bytes(disk.totalBytes)),
            field('Free', `${bytes(disk.freeBytes)} (${pct(disk.freeBytes, disk.totalBytes)})`)))),
      card('GPUs', { id: 'system-gpus' },
        h('div.status-grid',
          field('NVIDIA driver', s.driverVersion || 'none'),
          field('CUDA', s.cudaVersion || 'none'),
          field('GPUs', String(gpus.length))),
        gpus.length === 0
          ? h('p.info-message', `No NVIDIA GPU in use: ${s.gpuUnavailableReason || 'none found'}. Engines run on the CPU.`)
          : h('div.gpu-list', gpus.map(gpuCard))));
  }

  function gpuCard(g) {
    return h('div.gpu-item', { dataset: { gpuIndex: String(g.index ?? 0) } },
      h('h4', `GPU ${g.index ?? 0}: ${g.name || 'unknown'}`),
      h('div.status-grid',
        field('VRAM total', bytes(g.memoryTotalBytes)),
        field('VRAM used', `${bytes(g.memoryUsedBytes)} (${pct(g.memoryUsedBytes, g.memoryTotalBytes)})`),
        field('VRAM free', bytes(g.memoryFreeBytes)),
        field('Utilisation', `${num(g.utilizationPercent)} %`),
        field('Temperature', `${num(g.temperatureCelsius)} °C`),
        field('Power', `${(num(g.powerDrawMilliwatts) / 1000).toFixed(0)} W of ${(num(g.powerLimitMilliwatts) / 1000).toFixed(0)} W`),
        field('UUID', g.uuid)));
  }

  let loaded = false;
  return {
    el,
    start() {
      if (!loaded) { loaded = true; load(); }
    },
  };
}

export function pct(part, total) {
  const t = num(total);
  return t > 0 ? `${((num(part) / t) * 100).toFixed(1)} %` : '—';
}
