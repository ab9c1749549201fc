import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets of `accord_relay_validation_seconds`: 100 µs to 2.5 s. */
export const VALIDATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** Options of {@link RelayMetrics}. */
export interface RelayMetricsOptions {
  /** Collect the default process metrics (CPU, memory, event loop, GC; default true). */
  readonly defaultMetrics?: boolean;
  /** Labels added to every metric (e.g. `{instance: 'relay-1'}`). */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The relay's Prometheus metrics, in a registry of their own (never prom-client's global one, so
 * several relays in one process, as in tests, do not collide).
 *
 * @remarks Label values should come from small sets (facility ids, error codes, outcome names):
 * every distinct value is a new time series.
 */
export class RelayMetrics {
  /** The registry holding every relay metric. */
  readonly registry: Registry;
  readonly #connected: Gauge<'facility'>;
  readonly #facilities: Gauge;
  readonly #ingested: Counter<'facility'>;
  readonly #verdicts: Counter<'outcome' | 'code'>;
  readonly #validation: Histogram;
  readonly #refusedConnections: Counter<'reason'>;
  readonly #refusedFrames: Counter<'reason'>;
  readonly #enrollments: Counter<'result'>;

  constructor(options: RelayMetricsOptions = {}) {
    this.registry = new Registry();
    if (options.labels !== undefined) this.registry.setDefaultLabels({ ...options.labels });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.#connected = new Gauge({
      name: 'accord_relay_connected_devices',
      help: 'Devices connected to the relay now, per facility.',
      labelNames: ['facility'],
      registers,
    });
    this.#facilities = new Gauge({
      name: 'accord_relay_facilities_loaded',
      help: 'Facilities whose log the relay has loaded.',
      registers,
    });
    this.#ingested = new Counter({
      name: 'accord_relay_events_ingested_total',
      help: 'Device events the relay ingested (validated once each), per facility.',
      labelNames: ['facility'],
      registers,
    });
    this.#verdicts = new Counter({
      name: 'accord_relay_verdicts_total',
      help: 'Verdicts the relay wrote, by outcome (accepted, deadletter) and rejection code.',
      labelNames: ['outcome', 'code'],
      registers,
    });
    this.#validation = new Histogram({
      name: 'accord_relay_validation_seconds',
      help: 'Time to validate one event and record its verdict (its share of a validation round).',
      buckets: [...VALIDATION_BUCKETS],
      registers,
    });
    this.#refusedConnections = new Counter({
      name: 'accord_relay_refused_connections_total',
      help: 'Connections refused at the upgrade, by reason (error code).',
      labelNames: ['reason'],
      registers,
    });
    this.#refusedFrames = new Counter({
      name: 'accord_relay_refused_frames_total',
      help: 'Frames refused on open connections, by reason (error code).',
      labelNames: ['reason'],
      registers,
    });
    this.#enrollments = new Counter({
      name: 'accord_relay_enrollments_total',
      help: 'Enrollment requests, by result (enrolled, or the error code).',
      labelNames: ['result'],
      registers,
    });
  }

  /** The Content-Type of {@link text} (Prometheus text exposition format). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Sets the number of devices connected for `facility`. */
  setConnectedDevices(facility: string, count: number): void {
    this.#connected.set({ facility }, count);
  }

  /** Counts one more connected device of `facility`. */
  deviceConnected(facility: string): void {
    this.#connected.inc({ facility });
  }

  /** Counts one device of `facility` fewer. */
  deviceDisconnected(facility: string): void {
    this.#connected.dec({ facility });
  }

  /** Sets the number of facilities loaded. */
  setFacilitiesLoaded(count: number): void {
    this.#facilities.set(count);
  }

  /** Counts `count` (default 1) events ingested for `facility`. */
  eventsIngested(facility: string, count = 1): void {
    this.#ingested.inc({ facility }, count);
  }

  /**
   * Counts one verdict.
   *
   * @remarks `code` is the rejection code of a deadletter (`'422'`…); accepted verdicts use
   * `'none'` when it is omitted.
   */
  verdict(outcome: 'accepted' | 'deadletter', code?: string | number): void {
    this.#verdicts.inc({ outcome, code: code === undefined ? 'none' : String(code) });
  }

  /** Records one validation that took `seconds`. */
  observeValidation(seconds: number): void {
    this.#validation.observe(seconds);
  }

  /** Starts timing one validation; call the returned function when done (returns the seconds). */
  startValidationTimer(): () => number {
    return this.#validation.startTimer();
  }

  /** Counts one connection refused for `reason` (an error code). */
  refusedConnection(reason: string): void {
    this.#refusedConnections.inc({ reason });
  }

  /** Counts one frame refused for `reason` (an error code). */
  refusedFrame(reason: string): void {
    this.#refusedFrames.inc({ reason });
  }

  /** Counts one enrollment request by `result`: `'enrolled'` or the error code. */
  enrollment(result: string): void {
    this.#enrollments.inc({ result });
  }
}
