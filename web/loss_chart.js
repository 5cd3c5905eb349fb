// The loss curve of a training run on a <canvas>: every step's loss (faint) and its smoothed trend.

const RAW_COLOR = "rgba(110, 160, 255, 0.35)";
const SMOOTHED_COLOR = "rgb(80, 150, 255)";
const MARGIN = { left: 44, right: 8, top: 14, bottom: 16 };

export function drawLossChart(canvas, run) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return; // hidden (zoomed out, or another graph shown)
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const style = getComputedStyle(canvas);
  ctx.font = `10px ${style.fontFamily}`;
  ctx.fillStyle = style.color;

  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: Math.max(1, width - MARGIN.left - MARGIN.right),
    height: Math.max(1, height - MARGIN.top - MARGIN.bottom),
  };
  ctx.fillStyle = "rgba(0, 0, 0, 0.18)";
  ctx.fillRect(plot.left, plot.top, plot.width, plot.height);
  ctx.fillStyle = style.color;

  const points = run.points.filter(([, loss]) => Number.isFinite(loss));
  if (points.length === 0) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("waiting for the first step…", plot.left + plot.width / 2, plot.top + plot.height / 2);
    return;
  }

  // x from just before this run's first step (it may resume a trained word) to the last step planned.
  const firstStep = points[0][0] - 1;
  const lastStep = Math.max(run.total, points.at(-1)[0], firstStep + 1);
  const [low, high] = lossRange(points);
  const x = (step) => plot.left + ((step - firstStep) / (lastStep - firstStep)) * plot.width;
  const y = (loss) => plot.top + (1 - (loss - low) / (high - low)) * plot.height;

  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  drawLine(ctx, points.map(([step, loss]) => [x(step), y(loss)]), RAW_COLOR, 1);
  const smoothed = points.filter(([, , trend]) => Number.isFinite(trend));
  drawLine(ctx, smoothed.map(([step, , trend]) => [x(step), y(trend)]), SMOOTHED_COLOR, 2);
  ctx.restore();

  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  ctx.fillText(formatLoss(high), plot.left - 4, plot.top);
  ctx.fillText(formatLoss(low), plot.left - 4, plot.top + plot.height);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(String(firstStep), plot.left, plot.top + plot.height + 3);
  ctx.textAlign = "right";
  ctx.fillText(String(lastStep), plot.left + plot.width, plot.top + plot.height + 3);
  drawLegend(ctx, plot);
}

// The smoothed curve in full, and the raw losses without their rare spikes, which would flatten the rest.
function lossRange(points) {
  const raw = points.map(([, loss]) => loss).sort((a, b) => a - b);
  const quantile = (q) => raw[Math.min(raw.length - 1, Math.floor(q * raw.length))];
  const trend = points.map(([, , t]) => t).filter(Number.isFinite);
  let low = Math.min(quantile(0.02), ...trend);
  let high = Math.max(quantile(0.98), ...trend);
  if (high - low < 1e-12) {
    const pad = Math.abs(high) * 0.05 || 0.01;
    return [low - pad, high + pad];
  }
  const pad = (high - low) * 0.05;
  low -= pad;
  high += pad;
  return [low, high];
}

function drawLine(ctx, xy, color, lineWidth) {
  if (xy.length === 0) return;
  ctx.strokeStyle = color;
  ctx.lineWidth = lineWidth;
  ctx.lineJoin = "round";
  ctx.beginPath();
  xy.forEach(([px, py], i) => (i === 0 ? ctx.moveTo(px, py) : ctx.lineTo(px, py)));
  if (xy.length === 1) ctx.lineTo(xy[0][0] + 0.5, xy[0][1]); // one step: a dot
  ctx.stroke();
}

function drawLegend(ctx, plot) {
  const right = plot.left + plot.width;
  const baseline = plot.top - 2;
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  ctx.fillText("smoothed", right, baseline);
  const smoothedLeft = right - ctx.measureText("smoothed").width - 4;
  drawLine(ctx, [[smoothedLeft - 12, baseline - 5], [smoothedLeft, baseline - 5]], SMOOTHED_COLOR, 2);
  const rawRight = smoothedLeft - 18;
  ctx.fillText("each step", rawRight, baseline);
  const rawLeft = rawRight - ctx.measureText("each step").width - 4;
  drawLine(ctx, [[rawLeft - 12, baseline - 5], [rawLeft, baseline - 5]], RAW_COLOR, 2);
}

export function formatLoss(loss) {
  if (!Number.isFinite(loss)) return "–";
  return Math.abs(loss) >= 0.01 || loss === 0 ? loss.toFixed(4) : loss.toExponential(2);
}
