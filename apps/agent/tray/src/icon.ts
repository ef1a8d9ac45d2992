import type { TrayTone } from './menu-model';

const COLOURS: Record<TrayTone, [number, number, number]> = {
  connected: [47, 143, 70],
  busy: [183, 121, 31],
  off: [123, 135, 148],
  error: [197, 48, 48],
};

/**
 * The tray icon drawn in code (no image files to ship): a filled disc of the tone's colour on a
 * transparent square, as raw BGRA pixels for Electron's nativeImage.createFromBitmap.
 */
export function iconBitmap(tone: TrayTone, size = 16): Buffer {
  const [r, g, b] = COLOURS[tone];
  const px = Buffer.alloc(size * size * 4);
  const c = (size - 1) / 2;
  const radius = size / 2 - 1;
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      // Edge pixels get partial alpha: a smooth rim at small sizes.
      const d = Math.hypot(x - c, y - c);
      const alpha = Math.max(0, Math.min(1, radius + 0.5 - d));
      const i = (y * size + x) * 4;
      // Skia's bitmaps are premultiplied: each colour channel scaled by alpha.
      px[i] = Math.round(b * alpha);
      px[i + 1] = Math.round(g * alpha);
      px[i + 2] = Math.round(r * alpha);
      px[i + 3] = Math.round(alpha * 255);
    }
  }
  return px;
}
