// maskcanvas.js — the inpainting mask drawn over the init image: a <canvas> of the image's
// own pixel size laid over it, painted white with a round brush (white = repainted); toPNG
// writes the mask the API expects (white strokes on black, the image's size).

import { h } from './dom.js';

/**
 * createMaskEditor returns {el, canvas, setImage(url, width, height), clear(), hasStrokes(),
 * setEnabled(on), toPNG()}. onChange is called after each stroke and clear.
 */
export function createMaskEditor({ brushInput, onChange = () => {} }) {
  const base = h('img.mask-base#gen-init-preview', { alt: 'Init image' });
  const canvas = h('canvas.mask-canvas#gen-mask-canvas', { width: 64, height: 64, 'aria-label': 'Draw the mask: white is repainted' });
  const el = h('div.mask-stage#gen-mask-stage', { hidden: true }, base, canvas);
  const ctx = canvas.getContext('2d');
  let strokes = 0;
  let enabled = true;
  let last = null;

  const brush = () => {
    const v = Number(brushInput && brushInput.value);
    return Number.isFinite(v) && v > 0 ? v : 12;
  };

  // at maps a pointer event to the canvas's own pixels (it is shown scaled to the page).
  function at(e) {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
  }

  function dab(from, to) {
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = brush();
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (!enabled || e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    dab(last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    dab(last, p);
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    strokes++;
    canvas.dataset.strokes = String(strokes);
    onChange();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  function clear() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    strokes = 0;
    canvas.dataset.strokes = '0';
    onChange();
  }

  return {
    el,
    canvas,
    /** setImage shows the init image (url) and sizes the canvas to its pixels; null hides both. */
    setImage(url, width, height) {
      if (!url) { el.hidden = true; base.removeAttribute('src'); clear(); return; }
      // The image's own size as attributes: the stage has its shape before the image is decoded.
      base.width = width;
      base.height = height;
      base.src = url;
      canvas.width = width;
      canvas.height = height;
      el.hidden = false;
      clear();
    },
    clear,
    hasStrokes: () => strokes > 0,
    setEnabled(on) {
      enabled = on;
      canvas.classList.toggle('disabled', !on);
    },
    /** toPNG is the drawn mask as PNG bytes: white where painted, black elsewhere. */
    async toPNG() {
      const out = document.createElement('canvas');
      out.width = canvas.width;
      out.height = canvas.height;
      const o = out.getContext('2d');
      o.fillStyle = '#000';
      o.fillRect(0, 0, out.width, out.height);
      o.drawImage(canvas, 0, 0);
      const blob = await new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('the browser could not encode the mask as PNG'))), 'image/png'));
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
}
