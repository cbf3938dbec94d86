/**
 * PNG charts of the scale curves, rendered headless: Vega-Lite compiles a spec to Vega, Vega
 * renders it to SVG in Node (no canvas, no browser), resvg turns the SVG into a PNG with the
 * system's fonts. One chart per swept dimension, two panels: all pods together, and per pod.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { CurvePoint, CurvesResult, Dimension } from './workloads/curves.js';

const TITLES: Record<Dimension, string> = {
  pods: 'pods (100 rooms x 10 sockets)',
  rooms: 'rooms (2 sockets each)',
  sockets: 'sockets (in 10 rooms)',
};

function spec(dimension: Dimension, points: CurvePoint[], subtitle: string): vl.TopLevelSpec {
  const values = points
    .filter((p) => p.dimension === dimension)
    .flatMap((p) => {
      const series = `${p.bus}, history ${p.historySize > 0 ? `on (${p.historySize})` : 'off'}`;
      return [
        { x: p.x, series, panel: 'all pods', us: p.cpuUsPerDelivery },
        { x: p.x, series, panel: 'per pod (mean)', us: p.meanPodCpuUsPerDelivery },
      ];
    });
  const log = dimension !== 'pods';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Pod CPU per delivered event as ${dimension} grow`, subtitle, anchor: 'start' },
    background: 'white',
    padding: 12,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: ['all pods', 'per pod (mean)'] } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 340,
      height: 240,
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: {
          field: 'x',
          type: 'quantitative',
          title: TITLES[dimension],
          scale: log ? { type: 'log' } : { zero: false, domain: [2, 8] },
          axis: log ? { values: [10, 100, 1000, 10000], format: '~s' } : { values: [2, 4, 8] },
        },
        y: { field: 'us', type: 'quantitative', title: 'CPU µs per delivery', scale: { zero: true } },
        color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 400, symbolType: 'stroke' } },
        strokeDash: { field: 'series', type: 'nominal', legend: null },
      },
    },
    config: { font: 'DejaVu Sans', view: { stroke: '#ddd' } },
  } as vl.TopLevelSpec;
}

export async function renderPng(vlSpec: vl.TopLevelSpec): Promise<Buffer> {
  // Vega-Lite warns that color and strokeDash share one legend (on purpose): keep stderr quiet.
  const quiet = vega.logger(vega.None);
  const view = new vega.View(vega.parse(vl.compile(vlSpec, { logger: quiet }).spec), { renderer: 'none' });
  const svg = await view.toSVG(2);
  view.finalize();
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: 'white' }).render().asPng();
  return Buffer.from(png);
}

/** Writes docs/bench/curves-<dimension>.png for every dimension with points; returns the files. */
export async function writeCurveCharts(dir: string, r: CurvesResult, subtitle: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const dimension of ['pods', 'rooms', 'sockets'] as const) {
    if (!r.points.some((p) => p.dimension === dimension)) continue;
    const file = join(dir, `curves-${dimension}.png`);
    writeFileSync(file, await renderPng(spec(dimension, r.points, subtitle)));
    files.push(file);
  }
  return files;
}
