import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RelayMetrics } from './metrics.js';

describe('RelayMetrics', () => {
  it('exposes every relay metric with its labels after updates', async () => {
    const m = new RelayMetrics();
    m.setConnectedDevices('clinic-1', 3);
    m.deviceConnected('clinic-2');
    m.deviceConnected('clinic-2');
    m.deviceDisconnected('clinic-2');
    m.setFacilitiesLoaded(2);
    m.eventsIngested('clinic-1', 5);
    m.eventsIngested('clinic-1');
    m.verdict('accepted');
    m.verdict('deadletter', 422);
    m.verdict('deadletter', 422);
    m.observeValidation(0.002);
    const stop = m.startValidationTimer();
    expect(stop()).toBeGreaterThanOrEqual(0);
    m.refusedConnection('NETWORK_AUTH_FAILED');
    m.refusedFrame('NETWORK_BAD_FRAME');
    m.enrollment('enrolled');
    m.enrollment('RELAY_TOKEN_USED');
    const text = await m.text();
    for (const line of [
      'accord_relay_connected_devices{facility="clinic-1"} 3',
      'accord_relay_connected_devices{facility="clinic-2"} 1',
      'accord_relay_facilities_loaded 2',
      'accord_relay_events_ingested_total{facility="clinic-1"} 6',
      'accord_relay_verdicts_total{outcome="accepted",code="none"} 1',
      'accord_relay_verdicts_total{outcome="deadletter",code="422"} 2',
      'accord_relay_validation_seconds_count 2',
      'accord_relay_validation_seconds_bucket{le="0.0025"} 2',
      'accord_relay_refused_connections_total{reason="NETWORK_AUTH_FAILED"} 1',
      'accord_relay_refused_frames_total{reason="NETWORK_BAD_FRAME"} 1',
      'accord_relay_enrollments_total{result="enrolled"} 1',
      'accord_relay_enrollments_total{result="RELAY_TOKEN_USED"} 1',
    ]) {
      expect(text.split('\n'), line).toContain(line);
    }
    expect(text).toContain('# TYPE accord_relay_validation_seconds histogram');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('keeps each instance in its own registry, never the global one', async () => {
    const a = new RelayMetrics();
    const b = new RelayMetrics({ defaultMetrics: false, labels: { instance: 'b' } });
    a.eventsIngested('x', 2);
    b.eventsIngested('x', 7);
    expect(await a.text()).toContain('accord_relay_events_ingested_total{facility="x"} 2');
    expect(await b.text()).toContain('accord_relay_events_ingested_total{facility="x",instance="b"} 7');
    expect(await b.text()).not.toContain('process_cpu_user_seconds_total');
    expect(await globalRegistry.metrics()).not.toContain('accord_relay_');
  });
});
