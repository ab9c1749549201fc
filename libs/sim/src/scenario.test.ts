import { describe, expect, it } from 'vitest';
import { SimError } from './errors.js';
import { parseDuration } from './duration.js';
import { DEFAULT_LINK, checkScenario, defineScenario, parseScenario, withField } from './scenario.js';

const DAY = 86_400_000;

function codeOf(fn: () => unknown): { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SimError);
    return { code: (e as SimError).code, details: (e as SimError).details };
  }
  throw new Error('expected a SimError');
}

describe('parseDuration', () => {
  it('reads ms, units and "day N"', () => {
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('36h')).toBe(36 * 3_600_000);
    expect(parseDuration('2.5d')).toBe(2.5 * DAY);
    expect(parseDuration('day 1')).toBe(0);
    expect(parseDuration('day 5')).toBe(4 * DAY);
    for (const bad of ['', 'soon', '-1s', 'day 0', -5, Number.NaN, null, {}])
      expect(parseDuration(bad)).toBeUndefined();
  });
});

describe('defineScenario', () => {
  it('fills every default', () => {
    const s = defineScenario({});
    expect(s.seed).toBe(1);
    expect(s.epochMs).toBe(Date.UTC(2024, 5, 3));
    expect(s.durationMs).toBe(7 * DAY);
    expect(s.workload.untilMs).toBe(Math.round(7 * DAY * 0.8));
    expect(s.network.default).toEqual(DEFAULT_LINK);
    expect(s.relay && s.p2p).toBe(true);
  });

  it('reads the same scenario from YAML and JSON, scripted partition "tablet 3 offline from day 2 to day 5" included', () => {
    const yaml = `
seed: 7
facilities: 2
devicesPerFacility: 4
duration: 8d
relay: true
p2p: false
workload: { ratePerHour: 10, violations: 0.1, mix: { register: 5 } }
network:
  default: { loss: 0.05, latency: { dist: uniform, min: 10ms, max: 200ms } }
  links:
    - { between: [f1-d3, relay], truncate: 0.02, bandwidth: 20000 }
partitions:
  scripted:
    - { node: f1-d3, from: day 2, to: day 5 }
  random: { count: 2, meanLength: 6h }
clockSkew: { random: 30s, nodes: { f2-d1: 7200000 } }
crashes:
  scripted: [{ node: relay, at: 3d, downtime: 1h }]
`;
    const fromYaml = parseScenario(yaml);
    const fromJson = parseScenario(
      JSON.stringify({
        seed: 7,
        facilities: 2,
        devicesPerFacility: 4,
        duration: '8d',
        relay: true,
        p2p: false,
        workload: { ratePerHour: 10, violations: 0.1, mix: { register: 5 } },
        network: {
          default: { loss: 0.05, latency: { dist: 'uniform', min: '10ms', max: '200ms' } },
          links: [{ between: ['f1-d3', 'relay'], truncate: 0.02, bandwidth: 20000 }],
        },
        partitions: {
          scripted: [{ node: 'f1-d3', from: 'day 2', to: 'day 5' }],
          random: { count: 2, meanLength: '6h' },
        },
        clockSkew: { random: '30s', nodes: { 'f2-d1': 7_200_000 } },
        crashes: { scripted: [{ node: 'relay', at: '3d', downtime: '1h' }] },
      }),
    );
    expect(fromYaml).toEqual(fromJson);
    expect(fromYaml.partitions.scripted).toEqual([{ node: 'f1-d3', fromMs: DAY, toMs: 4 * DAY }]);
    expect(fromYaml.network.default.latency).toEqual({ dist: 'uniform', minMs: 10, maxMs: 200 });
    // An override starts from the scenario's default link, not the built-in one.
    expect(fromYaml.network.links[0]!.model).toMatchObject({ loss: 0.05, truncate: 0.02, bandwidth: 20000 });
    expect(fromYaml.workload.mix.register).toBe(5);
    expect(fromYaml.crashes.scripted).toEqual([{ node: 'relay', atMs: 3 * DAY, downMs: 3_600_000 }]);
    expect(fromYaml.relayRestore).toBeNull();
    expect(parseScenario('relayRestore: { at: 10h, from: 6h }').relayRestore).toEqual({
      atMs: 36_000_000,
      fromMs: 21_600_000,
    });
  });

  it('answers bad fields with SIM_SCENARIO_INVALID and the path of each issue', () => {
    const cases: [unknown, string][] = [
      [{ network: { default: { loss: 1.5 } } }, 'network.default.loss'],
      [{ duration: 'a while' }, 'duration'],
      [{ devicesPerFacility: 0 }, 'devicesPerFacility'],
      [{ tablets: 3 }, '(root)'],
      [{ epoch: '2024-02-30' }, 'epoch'],
      [
        { partitions: { scripted: [{ node: 'f1-d1', from: 'day 3', to: 'day 2' }] } },
        'partitions.scripted.0',
      ],
      [{ duration: '2d', workload: { until: '3d' } }, 'workload.until'],
      [{ relayRestore: { at: '6h', from: '10h' } }, 'relayRestore.from'],
      [{ duration: '1d', relayRestore: { at: '2d', from: '10h' } }, 'relayRestore.at'],
      [{ relay: false, relayRestore: { at: '10h', from: '6h' } }, 'relayRestore'],
      [{ relayRestore: { at: 'later', from: '6h' } }, 'relayRestore.at'],
      ['not an object', '(root)'],
    ];
    for (const [value, path] of cases) {
      const { code, details } = codeOf(() => checkScenario(value));
      expect(code).toBe('SIM_SCENARIO_INVALID');
      expect((details['issues'] as { path: string }[]).map((i) => i.path)).toContain(path);
    }
  });

  it('answers a node the scenario does not have with SIM_UNKNOWN_NODE', () => {
    const { code, details } = codeOf(() =>
      defineScenario({
        devicesPerFacility: 2,
        partitions: { scripted: [{ node: 'f1-d3', from: 0, to: '1h' }] },
      }),
    );
    expect(code).toBe('SIM_UNKNOWN_NODE');
    expect(details).toMatchObject({ node: 'f1-d3', path: 'partitions.scripted.0.node' });
  });

  it('answers broken YAML and JSON with SIM_SCENARIO_INVALID, naming the line for YAML', () => {
    const yaml = codeOf(() => parseScenario('seed: 1\nnetwork: [unclosed\n'));
    expect(yaml.code).toBe('SIM_SCENARIO_INVALID');
    expect(yaml.details['line']).toBeGreaterThan(1);
    expect(codeOf(() => parseScenario('{"seed": ')).code).toBe('SIM_SCENARIO_INVALID');
    // YAML's JSON schema: "no" stays a string, so it is refused as a boolean instead of read as false.
    expect(codeOf(() => parseScenario('relay: no')).code).toBe('SIM_SCENARIO_INVALID');
  });

  it('sets a dotted field on a copy, creating the objects on the way', () => {
    const base = { network: { default: { loss: 0.1, truncate: 0.2 } }, seed: 4 };
    const varied = withField(withField(base, 'network.default.loss', 0.3), 'partitions.random.count', 2);
    expect(varied).toEqual({
      network: { default: { loss: 0.3, truncate: 0.2 } },
      seed: 4,
      partitions: { random: { count: 2 } },
    });
    expect(base.network.default.loss).toBe(0.1);
  });
});
