// The admins' analytics page: active users per day (a line), retention by weekly cohort (a heatmap), what
// was made per day (bars), and the routers' latency per operation — drawn as plain SVG and tables from one
// query, with a CSV download of each report (a signed link the server makes).
import { useMemo } from 'react';
import { useClient, useQuery } from 'urql';
import { graphql } from '../gql';
import type { AnalyticsReport, ReportBucket } from '../gql/graphql';
import { errorText } from './errors';

const Dashboard = graphql(`
  query AnalyticsDashboard(
    $monthAgo: DateTime!
    $weeksAgo: DateTime!
    $dayAgo: DateTime!
    $to: DateTime!
    $timeZone: String!
  ) {
    daily: activeUsers(period: DAY, from: $monthAgo, to: $to, timeZone: $timeZone) { start activeUsers }
    weekly: activeUsers(period: WEEK, from: $weeksAgo, to: $to, timeZone: $timeZone) { start activeUsers }
    retention(from: $weeksAgo, to: $to, timeZone: $timeZone) { start size retained }
    contentReport(from: $monthAgo, to: $to, bucket: DAY, timeZone: $timeZone) {
      start
      posts
      comments
      votes
      messages
      signups
    }
    performanceReport(from: $dayAgo, to: $to, bucket: DAY, timeZone: $timeZone) {
      operation
      requests
      errorRate
      p50Ms
      p95Ms
      p99Ms
    }
  }
`);

const Export = graphql(`
  query ExportReport($input: ReportExportInput!) {
    exportReport(input: $input) { url }
  }
`);

const DAY = 86_400_000;
// Days start at midnight where the reader is: the reports take the browser's IANA zone.
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
// A bucket's start is its local midnight: its date is the reader's, not UTC's.
const localDate = (start: string) =>
  new Date(start).toLocaleDateString(undefined, { timeZone, month: '2-digit', day: '2-digit' });

export function Analytics() {
  // Whole days, so the variables (and the cached result) stay the same while the page is open.
  const range = useMemo(() => {
    const to = new Date(Math.ceil(Date.now() / DAY) * DAY);
    const ago = (days: number) => new Date(to.getTime() - days * DAY).toISOString();
    return { monthAgo: ago(30), weeksAgo: ago(56), dayAgo: ago(1), to: to.toISOString(), timeZone };
  }, []);
  const [{ data, error, fetching }] = useQuery({ query: Dashboard, variables: range });
  const client = useClient();

  async function download(report: AnalyticsReport, from: string, bucket: ReportBucket) {
    const result = await client
      .query(Export, { input: { report, from, to: range.to, bucket, timeZone } }, { requestPolicy: 'network-only' })
      .toPromise();
    const url = result.data?.exportReport.url;
    if (url) location.assign(url);
  }

  if (error) return <p className="error">{errorText(error)}</p>;
  if (fetching || !data) return <p className="loading">Loading analytics…</p>;
  const content = data.contentReport;
  return (
    <section className="analytics">
      <h2>Analytics</h2>
      <div className="card" data-testid="active-users">
        <header className="chart-header">
          <h3>Active users per day</h3>
          <button onClick={() => download('ACTIVE_USERS', range.monthAgo, 'DAY')}>CSV</button>
        </header>
        <LineChart points={data.daily.map((p) => ({ label: localDate(p.start), value: p.activeUsers }))} />
        <p className="muted">
          This week: {data.weekly.at(-1)?.activeUsers ?? 0} active users (weeks and months are merged daily
          sketches, within about 1 %).
        </p>
      </div>
      <div className="card" data-testid="retention">
        <header className="chart-header">
          <h3>Retention by weekly cohort</h3>
          <button onClick={() => download('RETENTION', range.weeksAgo, 'WEEK')}>CSV</button>
        </header>
        <table className="heatmap">
          <thead>
            <tr>
              <th>Cohort</th>
              <th>Users</th>
              {(data.retention[0]?.retained ?? []).map((_, k) => (
                <th key={k}>W{k}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.retention.map((cohort) => (
              <tr key={cohort.start}>
                <td>{localDate(cohort.start)}</td>
                <td>{cohort.size}</td>
                {cohort.retained.map((n, k) => {
                  const share = cohort.size ? n / cohort.size : 0;
                  return (
                    <td key={k} style={{ background: `rgba(47, 111, 235, ${share.toFixed(2)})` }}>
                      {Math.round(share * 100)}%
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="card" data-testid="content">
        <header className="chart-header">
          <h3>Made per day</h3>
          <button onClick={() => download('CONTENT', range.monthAgo, 'DAY')}>CSV</button>
        </header>
        <BarChart
          points={content.map((p) => ({ label: localDate(p.start), value: p.posts + p.comments + p.messages }))}
        />
        <p className="muted">
          Last 30 days: {sum(content.map((p) => p.posts))} posts, {sum(content.map((p) => p.comments))} comments,{' '}
          {sum(content.map((p) => p.votes))} votes, {sum(content.map((p) => p.messages))} messages,{' '}
          {sum(content.map((p) => p.signups))} sign-ups.
        </p>
      </div>
      <div className="card" data-testid="performance">
        <header className="chart-header">
          <h3>Router latency per operation (today, UTC)</h3>
          <button onClick={() => download('PERFORMANCE', range.dayAgo, 'HOUR')}>CSV</button>
        </header>
        <table>
          <thead>
            <tr>
              <th>Operation</th>
              <th>Requests</th>
              <th>Errors</th>
              <th>p50</th>
              <th>p95</th>
              <th>p99</th>
            </tr>
          </thead>
          <tbody>
            {data.performanceReport.map((p) => (
              <tr key={p.operation}>
                <td>{p.operation}</td>
                <td>{p.requests}</td>
                <td>{(p.errorRate * 100).toFixed(1)}%</td>
                <td>{ms(p.p50Ms)}</td>
                <td>{ms(p.p95Ms)}</td>
                <td>{ms(p.p99Ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const ms = (value: number | null | undefined) => (value == null ? '–' : `${value.toFixed(1)} ms`);

interface Point {
  label: string;
  value: number;
}

const WIDTH = 640;
const HEIGHT = 160;
const PAD = 24;

/** x and y of each point, the largest value at the top. */
function layout(points: Point[]) {
  const top = Math.max(1, ...points.map((p) => p.value));
  const step = points.length > 1 ? (WIDTH - 2 * PAD) / (points.length - 1) : 0;
  return {
    top,
    at: points.map((p, i) => ({
      ...p,
      x: PAD + i * step,
      y: HEIGHT - PAD - (p.value / top) * (HEIGHT - 2 * PAD),
    })),
  };
}

function LineChart({ points }: { points: Point[] }) {
  const { top, at } = layout(points);
  return (
    <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="chart" role="img" aria-label="active users per day">
      <text x={4} y={PAD - 8} className="axis">{top}</text>
      <line x1={PAD} y1={HEIGHT - PAD} x2={WIDTH - PAD} y2={HEIGHT - PAD} className="axis-line" />
      <polyline points={at.map((p) => `${p.x},${p.y}`).join(' ')} className="line" />
      {at.map((p) => (
        <circle key={p.label} cx={p.x} cy={p.y} r={2.5} className="dot">
          <title>{`${p.label}: ${p.value}`}</title>
        </circle>
      ))}
      {at.filter((_, i) => i % 7 === 0).map((p) => (
        <text key={p.label} x={p.x} y={HEIGHT - 6} className="axis" textAnchor="middle">{p.label}</text>
      ))}
    </svg>
  );
}

function BarChart({ points }: { points: Point[] }) {
  const { top, at } = layout(points);
  const width = Math.max(2, (WIDTH - 2 * PAD) / Math.max(1, points.length) - 2);
  return (
    <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="chart" role="img" aria-label="made per day">
      <text x={4} y={PAD - 8} className="axis">{top}</text>
      {at.map((p) => (
        <rect key={p.label} x={p.x - width / 2} y={p.y} width={width} height={HEIGHT - PAD - p.y} className="bar">
          <title>{`${p.label}: ${p.value}`}</title>
        </rect>
      ))}
    </svg>
  );
}
