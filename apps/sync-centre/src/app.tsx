// The Sync Centre page: a status bar pushed live by the agent (`GET /api/stream`), the sync
// screens (needs attention, outbox, inspect, environment, audit) and enough domain screens to drive
// a facility by hand. Every text comes from the catalogue (strings.ts).
import { createContext, Fragment, type ComponentChildren, type JSX } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, getJson, newIdempotencyKey, postJson } from './api.js';
import { describeCode, describeEvent, describeRule, groupByCode, hlcTime, patientNamer } from './describe.js';
import { en, type SyncCentreStrings } from './strings.js';
import type {
  Appointment,
  AuditEntry,
  DeadletterInfo,
  Encounter,
  EventInfo,
  FullStatus,
  LiveStatus,
  Lot,
  Patient,
} from './types.js';

/** The version of the page, shown on the Environment screen. */
export const PAGE_VERSION = '0.1.0';

/** The screens, by the hash that opens them. */
const SCREENS = [
  'attention',
  'outbox',
  'patients',
  'queue',
  'vaccinate',
  'stock',
  'appointments',
  'counters',
  'environment',
  'audit',
] as const;
type Screen = (typeof SCREENS)[number];

/** What every screen needs: the texts, and a number that changes whenever the agent pushes a new status. */
interface Ctx {
  readonly t: SyncCentreStrings;
  readonly version: number;
}
const AppContext = createContext<Ctx>({ t: en, version: 0 });

const ANTIGENS = ['BCG', 'OPV', 'Penta', 'PCV', 'Rota', 'Measles'];

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

function randomId(prefix: string): string {
  return `${prefix}-${newIdempotencyKey().slice(0, 10)}`;
}

function errorText(t: SyncCentreStrings, e: unknown): string {
  if (e instanceof ApiError) return t.common.error(e.code, e.message);
  return t.common.error('ERROR', e instanceof Error ? e.message : String(e));
}

/** Loads `path` again whenever the agent pushed a change (no polling). */
function useLoad<T>(path: string): { data: T | undefined; error: string | undefined; reload: () => void } {
  const { t, version } = useContext(AppContext);
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    let current = true;
    getJson<T>(path).then(
      (d) => {
        if (!current) return;
        setData(d);
        setError(undefined);
      },
      (e: unknown) => {
        if (current) setError(errorText(t, e));
      },
    );
    return () => {
      current = false;
    };
  }, [path, version, nonce, t]);
  return { data, error, reload: () => setNonce((n) => n + 1) };
}

/**
 * Runs user actions: one `Idempotency-Key` per action (made when the user acts, reused if the
 * request is sent again), and the outcome announced in a live region.
 */
function useAction(): {
  run: (action: (key: string) => Promise<string>) => void;
  busy: boolean;
  message: ComponentChildren;
} {
  const { t } = useContext(AppContext);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const run = useCallback(
    (action: (key: string) => Promise<string>) => {
      const key = newIdempotencyKey();
      setBusy(true);
      action(key).then(
        (text) => {
          setMessage({ ok: true, text });
          setBusy(false);
        },
        (e: unknown) => {
          setMessage({ ok: false, text: errorText(t, e) });
          setBusy(false);
        },
      );
    },
    [t],
  );
  const shown =
    message === undefined ? null : (
      <p class={message.ok ? 'note ok' : 'note bad'} role={message.ok ? 'status' : 'alert'}>
        {message.text}
      </p>
    );
  return { run, busy, message: shown };
}

function Loading({ error }: { error: string | undefined }): JSX.Element {
  const { t } = useContext(AppContext);
  return error === undefined ? <p>{t.common.loading}</p> : <p class="note bad">{error}</p>;
}

function time(iso: string | number): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// ---------------------------------------------------------------------------------------------
// Status bar

function StatusBar({ live, connected }: { live: LiveStatus | undefined; connected: boolean }): JSX.Element {
  const { t } = useContext(AppContext);
  if (live === undefined) {
    return (
      <section class="statusbar" aria-label={t.status.label}>
        <p>{t.status.connecting}</p>
      </section>
    );
  }
  const attention = live.needsAttention > 0;
  const online = live.online && connected;
  const relay =
    live.relay === null
      ? t.status.relayNone
      : (live.relay.connected ? t.status.relayConnected : t.status.relayDisconnected)(
          live.relay.lastContact === null ? t.status.never : time(live.relay.lastContact),
        );
  return (
    <section class="statusbar" aria-label={t.status.label}>
      <a
        class={attention ? 'sync warn' : 'sync'}
        href="#/attention"
        data-testid="sync-icon"
        aria-label={attention ? t.status.syncWarning(live.needsAttention) : t.status.syncOk}
        title={attention ? t.status.syncWarning(live.needsAttention) : t.status.syncOk}
      >
        <span aria-hidden="true">⟳</span>
        {attention ? (
          <span class="mark" aria-hidden="true">
            !
          </span>
        ) : null}
      </a>
      <dl>
        <div>
          <dt class="sr-only">{t.status.online}</dt>
          <dd data-testid="status-online" class={online ? 'on' : 'off'}>
            {online ? t.status.online : t.status.offline}
          </dd>
        </div>
        <div>
          <dt>{t.status.relay}</dt>
          <dd data-testid="status-relay">{relay}</dd>
        </div>
        <div>
          <dt>{t.status.peers}</dt>
          <dd data-testid="status-peers">{t.status.peersValue(live.peers.connected, live.peers.known)}</dd>
        </div>
        <div>
          <dt>{t.status.pending}</dt>
          <dd data-testid="status-pending">{live.pending}</dd>
        </div>
        <div>
          <dt>{t.status.outbox}</dt>
          <dd data-testid="status-outbox">{live.outbox}</dd>
        </div>
        <div>
          <dt>{t.status.needsAttention}</dt>
          <dd data-testid="status-attention">
            <a href="#/attention">{live.needsAttention}</a>
          </dd>
        </div>
        <div>
          <dt>{t.status.confirmedSeq}</dt>
          <dd data-testid="status-confirmed">{live.confirmedSeq}</dd>
        </div>
      </dl>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Sync screens

function usePatientNamer(): (id: unknown) => string {
  const { data } = useLoad<Patient[]>('/api/patients');
  return patientNamer(data ?? []);
}

function OutboxScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<EventInfo[]>('/api/outbox');
  const name = usePatientNamer();
  const now = Date.now();
  return (
    <>
      <h1>{t.outbox.title}</h1>
      <p>{t.outbox.intro}</p>
      {data === undefined ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p>{t.outbox.empty}</p>
      ) : (
        <ol class="cards" data-testid="outbox-list">
          {[...data]
            .sort((a, b) => a.event.seq - b.event.seq)
            .map((info) => (
              <li key={info.event.id}>
                <span>{describeEvent(t, info.event.type, info.event.data, name)}</span>{' '}
                <span class="muted">{t.common.age(now - hlcTime(info.event.hlc))}</span>{' '}
                <a href={`#/inspect/${encodeURIComponent(info.event.id)}`}>{t.common.inspect}</a>
              </li>
            ))}
        </ol>
      )}
    </>
  );
}

function DiscardDialog({
  what,
  onConfirm,
  onClose,
}: {
  what: string;
  onConfirm: (reason: string) => void;
  onClose: () => void;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState(t.discard.defaultReason);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="discard-title" onClose={onClose}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm(reason.trim() === '' ? t.discard.defaultReason : reason);
        }}
      >
        <h2 id="discard-title">{t.discard.title}</h2>
        <p>{t.discard.explain(what)}</p>
        <label>
          {t.discard.reason}
          <input value={reason} maxLength={4096} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
        <div class="buttons">
          <button type="submit" class="danger">
            {t.discard.confirm}
          </button>
          <button type="button" onClick={onClose}>
            {t.common.cancel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** Edits the top-level fields of a rejected event's data and records an amend (`supersedes`). */
function AmendForm({
  item,
  what,
  onDone,
  onCancel,
  run,
}: {
  item: DeadletterInfo;
  what: string;
  onDone: () => void;
  onCancel: () => void;
  run: (action: (key: string) => Promise<string>) => void;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const original = (typeof item.data === 'object' && item.data !== null ? item.data : {}) as Record<
    string,
    unknown
  >;
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(
      Object.entries(original).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
    ),
  );
  const submit = (e: Event): void => {
    e.preventDefault();
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) {
      // A field keeps its original kind: numbers stay numbers, objects are edited as JSON.
      if (typeof original[k] === 'string') data[k] = v;
      else {
        try {
          data[k] = JSON.parse(v) as unknown;
        } catch {
          data[k] = v;
        }
      }
    }
    run(async (key) => {
      await postJson('/api/events', { type: item.type, data, supersedes: item.id }, key);
      onDone();
      return t.attention.amended;
    });
  };
  return (
    <form class="amend" onSubmit={submit} aria-label={t.amend.title(what)}>
      <h4>{t.amend.title(what)}</h4>
      <p>{t.amend.explain}</p>
      {Object.keys(values).map((k) => (
        <label key={k}>
          {k}
          <input
            name={k}
            value={values[k]}
            onInput={(e) => {
              const v = e.currentTarget.value;
              setValues((old) => ({ ...old, [k]: v }));
            }}
          />
        </label>
      ))}
      <div class="buttons">
        <button type="submit">{t.amend.record}</button>
        <button type="button" onClick={onCancel}>
          {t.common.cancel}
        </button>
      </div>
    </form>
  );
}

function DeadletterCard({
  item,
  name,
  run,
  busy,
}: {
  item: DeadletterInfo;
  name: (id: unknown) => string;
  run: (action: (key: string) => Promise<string>) => void;
  busy: boolean;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const [mode, setMode] = useState<'none' | 'discard' | 'amend'>('none');
  const what = describeEvent(t, item.type, item.data, name);
  const rule = describeRule(t, item.rule, item.details);
  const retryable = item.code !== 403;
  return (
    <li class="card" data-testid="deadletter" data-id={item.id}>
      <h3>{what}</h3>
      <dl class="facts">
        <dt>{t.attention.rule}</dt>
        <dd>
          {rule.name} <span class="muted">({item.rule ?? '—'})</span>
        </dd>
        <dt>{t.attention.reason}</dt>
        <dd>{item.reason ?? '—'}</dd>
        {rule.numbers === undefined ? null : (
          <>
            <dt>{t.attention.numbers}</dt>
            <dd data-testid="numbers">{rule.numbers}</dd>
          </>
        )}
        <dt>{t.attention.device}</dt>
        <dd class="mono">{item.device}</dd>
        <dt>{t.attention.rejectedAt}</dt>
        <dd>{time(item.verdictAt)}</dd>
      </dl>
      <div class="buttons">
        <a class="button" href={`#/inspect/${encodeURIComponent(item.id)}`}>
          {t.common.inspect}
        </a>
        {retryable ? (
          <button
            type="button"
            disabled={busy}
            onClick={() =>
              run(async (key) => {
                await postJson(`/api/events/${encodeURIComponent(item.id)}/retry`, {}, key);
                return t.attention.retried;
              })
            }
          >
            {t.attention.retry}
          </button>
        ) : null}
        {retryable ? (
          <button type="button" disabled={busy} onClick={() => setMode('amend')}>
            {t.attention.amend}
          </button>
        ) : null}
        <button type="button" class="danger" disabled={busy} onClick={() => setMode('discard')}>
          {t.attention.discard}
        </button>
      </div>
      {mode === 'amend' ? (
        <AmendForm
          item={item}
          what={what}
          run={run}
          onDone={() => setMode('none')}
          onCancel={() => setMode('none')}
        />
      ) : null}
      {mode === 'discard' ? (
        <DiscardDialog
          what={what}
          onClose={() => setMode('none')}
          onConfirm={(reason) => {
            setMode('none');
            run(async (key) => {
              await postJson(`/api/events/${encodeURIComponent(item.id)}/discard`, { reason }, key);
              return t.attention.discarded;
            });
          }}
        />
      ) : null}
    </li>
  );
}

function AttentionScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<DeadletterInfo[]>('/api/deadletters');
  const name = usePatientNamer();
  const { run, busy, message } = useAction();
  return (
    <>
      <h1>{t.attention.title}</h1>
      {message}
      {data === undefined ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p>{t.attention.empty}</p>
      ) : (
        <>
          <div class="buttons">
            <button
              type="button"
              disabled={busy}
              onClick={() =>
                run(async (key) => {
                  const r = await postJson<{ retried: unknown[]; skipped: unknown[] }>(
                    '/api/deadletters/retry-all',
                    {},
                    key,
                  );
                  return t.attention.retryAllDone(r.retried.length, r.skipped.length);
                })
              }
            >
              {t.attention.retryAll}
            </button>
          </div>
          {groupByCode(data).map((group) => {
            const code = describeCode(t, group.code);
            return (
              <section key={String(group.code)} class="group" data-testid={`code-${String(group.code)}`}>
                <h2>{t.attention.codeHeading(String(group.code ?? '?'), code.meaning)}</h2>
                <p class="muted">{code.how}</p>
                <ul class="cards">
                  {group.items.map((item) => (
                    <DeadletterCard key={item.id} item={item} name={name} run={run} busy={busy} />
                  ))}
                </ul>
              </section>
            );
          })}
        </>
      )}
    </>
  );
}

function InspectScreen({ id }: { id: string }): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<EventInfo>(`/api/events/${encodeURIComponent(id)}`);
  const name = usePatientNamer();
  if (data === undefined) {
    return (
      <>
        <h1>{t.inspect.title}</h1>
        {error !== undefined && error.includes('DEVICE_NOT_FOUND') ? (
          <p class="note bad">{t.inspect.notFound}</p>
        ) : (
          <Loading error={error} />
        )}
      </>
    );
  }
  const e = data.event;
  const v = data.verdictData;
  const fields =
    typeof e.data === 'object' && e.data !== null ? Object.entries(e.data as Record<string, unknown>) : [];
  const rule = v?.outcome === 'deadletter' ? describeRule(t, v.rule ?? null, v.details) : undefined;
  return (
    <>
      <h1>{t.inspect.title}</h1>
      <h2>{describeEvent(t, e.type, e.data, name)}</h2>
      <dl class="facts" data-testid="inspect">
        <dt>{t.inspect.id}</dt>
        <dd class="mono">{e.id}</dd>
        <dt>{t.inspect.type}</dt>
        <dd>{e.type}</dd>
        <dt>{t.inspect.author}</dt>
        <dd class="mono">{e.device}</dd>
        <dt>{t.inspect.seq}</dt>
        <dd>{e.seq}</dd>
        <dt>{t.inspect.time}</dt>
        <dd>{time(hlcTime(e.hlc))}</dd>
        <dt>{t.inspect.hlc}</dt>
        <dd class="mono">{e.hlc}</dd>
        <dt>{t.inspect.subject}</dt>
        <dd>
          {e.subject.kind} {e.subject.id}
        </dd>
        <dt>{t.inspect.status}</dt>
        <dd>{t.inspect.statuses[data.status] ?? data.status}</dd>
        {e.supersedes === undefined ? null : (
          <>
            <dt>{t.inspect.supersedes}</dt>
            <dd>
              <a class="mono" href={`#/inspect/${encodeURIComponent(e.supersedes)}`}>
                {e.supersedes}
              </a>
            </dd>
          </>
        )}
      </dl>
      <h3>{t.inspect.fields}</h3>
      <table>
        <tbody>
          {fields.map(([k, val]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{typeof val === 'string' ? val : JSON.stringify(val)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>{t.inspect.verdict}</h3>
      {v === undefined ? (
        <p>{t.inspect.verdictNone}</p>
      ) : v.outcome === 'accepted' ? (
        <p>{t.inspect.accepted(v.seq ?? 0)}</p>
      ) : (
        <dl class="facts">
          <dt>{t.inspect.verdict}</dt>
          <dd>
            {t.inspect.rejected(String(v.code ?? '?'))}: {describeCode(t, v.code ?? null).meaning}
          </dd>
          <dt>{t.attention.rule}</dt>
          <dd>
            {rule?.name} <span class="muted">({v.rule ?? '—'})</span>
          </dd>
          <dt>{t.attention.reason}</dt>
          <dd>{v.reason ?? '—'}</dd>
          {rule?.numbers === undefined ? null : (
            <>
              <dt>{t.attention.numbers}</dt>
              <dd>{rule.numbers}</dd>
            </>
          )}
        </dl>
      )}
      {data.verdict === undefined ? null : (
        <p class="muted mono">
          {data.verdict.id} · {data.verdict.hlc}
        </p>
      )}
      <h3>{t.inspect.resolvedBy}</h3>
      {data.resolvedBy === undefined ? (
        <p>{t.inspect.notResolved}</p>
      ) : (
        <p>
          <a class="mono" href={`#/inspect/${encodeURIComponent(data.resolvedBy)}`}>
            {data.resolvedBy}
          </a>
        </p>
      )}
    </>
  );
}

function EnvironmentScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<FullStatus>('/api/status');
  const { run, busy, message } = useAction();
  if (data === undefined) return <Loading error={error} />;
  const e = t.environment;
  return (
    <>
      <h1>{e.title}</h1>
      {message}
      <h2>{e.network}</h2>
      <div class="buttons">
        <button
          type="button"
          disabled={busy}
          onClick={() =>
            run(async (key) => {
              const r = await postJson<{ online: boolean }>('/api/network', { online: !data.online }, key);
              return r.online ? e.wentOnline : e.wentOffline;
            })
          }
        >
          {data.online ? e.goOffline : e.goOnline}
        </button>
      </div>
      <h2>{e.device}</h2>
      <dl class="facts">
        <dt>{e.deviceName}</dt>
        <dd>{data.name}</dd>
        <dt>{e.deviceId}</dt>
        <dd class="mono" data-testid="env-device">
          {data.device}
        </dd>
        <dt>{e.facility}</dt>
        <dd>{data.facility}</dd>
        <dt>{e.relayAddress}</dt>
        <dd class="mono">{data.relay?.url ?? t.common.none}</dd>
        <dt>{e.relayId}</dt>
        <dd class="mono">{data.relay?.id ?? t.common.none}</dd>
        <dt>{e.pageVersion}</dt>
        <dd>{PAGE_VERSION}</dd>
        <dt>{t.status.confirmedSeq}</dt>
        <dd>{data.confirmedSeq}</dd>
      </dl>
      <h2>{e.counts}</h2>
      <dl class="facts">
        {Object.entries(data.counts).map(([k, n]) => (
          <Fragment key={k}>
            <dt>{e.countNames[k] ?? k}</dt>
            <dd>{n}</dd>
          </Fragment>
        ))}
      </dl>
      <h2>{e.integrity}</h2>
      <ul data-testid="env-integrity">
        {data.integrity.holes.length === 0 ? <li>{e.noHoles}</li> : null}
        {data.integrity.holes.map((h) => (
          <li key={h.device}>{e.holes(h.device, h.missing.length)}</li>
        ))}
        {data.withheld.length === 0 ? <li>{e.noWithheld}</li> : null}
        {data.withheld.map((w) => (
          <li key={w.device}>{e.withheld(w.device, w.from, w.reason, w.heldBack)}</li>
        ))}
        {data.clockSkews.length === 0 ? <li>{e.noClockSkews}</li> : null}
        {data.clockSkews.map((c) => (
          <li key={c.device} class="note bad">
            {e.clockSkew(c.device, c.offByHours)}
          </li>
        ))}
        {data.integrity.own?.check === undefined ? null : (
          <li>
            {e.ownHistory}: {data.integrity.own.check}
          </li>
        )}
        {data.integrity.setAside ? <li>{e.setAside(data.integrity.setAside.path)}</li> : null}
      </ul>
    </>
  );
}

function AuditScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<AuditEntry[]>('/api/audit');
  const a = t.audit;
  return (
    <>
      <h1>{a.title}</h1>
      {data === undefined ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p>{a.empty}</p>
      ) : (
        <div class="scroll">
          <table data-testid="audit">
            <thead>
              <tr>
                <th scope="col">{a.at}</th>
                <th scope="col">{a.action}</th>
                <th scope="col">{a.target}</th>
                <th scope="col">{a.outcome}</th>
                <th scope="col">{a.detail}</th>
              </tr>
            </thead>
            <tbody>
              {data.map((row, i) => (
                <tr key={i}>
                  <td>{time(row.at)}</td>
                  <td>{a.actions[row.action] ?? row.action}</td>
                  <td class="mono">
                    {row.target === undefined ? (
                      '—'
                    ) : (
                      <a href={`#/inspect/${encodeURIComponent(row.target)}`}>{row.target}</a>
                    )}
                  </td>
                  <td>{a.outcomes[row.outcome] ?? row.outcome}</td>
                  <td>{row.detail === undefined ? '' : JSON.stringify(row.detail)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

// ---------------------------------------------------------------------------------------------
// Domain screens

/** Records one domain event for a user action; resolves with the message to show. */
async function record(
  t: SyncCentreStrings,
  key: string,
  type: string,
  data: Record<string, unknown>,
): Promise<string> {
  const r = await postJson<{ warning?: { reason?: string } }>('/api/events', { type, data }, key);
  return r.warning?.reason !== undefined ? t.vaccinate.warning(r.warning.reason) : t.common.saved;
}

function Field({ label, children }: { label: string; children: ComponentChildren }): JSX.Element {
  return (
    <label>
      {label}
      {children}
    </label>
  );
}

function PatientsScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const p = t.patients;
  const { data, error } = useLoad<Patient[]>('/api/patients');
  const { run, busy, message } = useAction();
  const [form, setForm] = useState({
    nationalId: '',
    givenName: '',
    familyName: '',
    birthDate: '',
    sex: 'female',
  });
  const set = (k: keyof typeof form) => (e: { currentTarget: { value: string } }) => {
    const v = e.currentTarget.value;
    setForm((f) => ({ ...f, [k]: v }));
  };
  return (
    <>
      <h1>{p.title}</h1>
      {message}
      <form
        class="form"
        aria-labelledby="register-title"
        onSubmit={(e) => {
          e.preventDefault();
          run((key) => record(t, key, 'PatientRegistered', { patientId: randomId('P'), ...form }));
        }}
      >
        <h2 id="register-title">{p.register}</h2>
        <Field label={p.nationalId}>
          <input name="nationalId" required value={form.nationalId} onInput={set('nationalId')} />
        </Field>
        <Field label={p.givenName}>
          <input name="givenName" required value={form.givenName} onInput={set('givenName')} />
        </Field>
        <Field label={p.familyName}>
          <input name="familyName" required value={form.familyName} onInput={set('familyName')} />
        </Field>
        <Field label={p.birthDate}>
          <input name="birthDate" type="date" required value={form.birthDate} onInput={set('birthDate')} />
        </Field>
        <Field label={p.sex}>
          <select name="sex" value={form.sex} onChange={set('sex')}>
            {Object.entries(p.sexes).map(([k, v]) => (
              <option key={k} value={k}>
                {v}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" disabled={busy}>
          {p.register}
        </button>
      </form>
      <h2>{p.list}</h2>
      {data === undefined ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p>{p.empty}</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">{p.name}</th>
                <th scope="col">{p.nationalId}</th>
                <th scope="col">{p.birthDate}</th>
                <th scope="col">
                  <span class="sr-only">{p.checkIn}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.map((pt) => (
                <tr key={pt.id}>
                  <td>
                    {pt.givenName} {pt.familyName}
                  </td>
                  <td>{pt.nationalId}</td>
                  <td>{pt.birthDate}</td>
                  <td>
                    <button
                      type="button"
                      disabled={busy}
                      aria-label={`${p.checkIn}: ${pt.givenName} ${pt.familyName}`}
                      onClick={() =>
                        run(async (key) => {
                          await record(t, key, 'PatientCheckedIn', {
                            patientId: pt.id,
                            encounterId: randomId('E'),
                          });
                          return p.checkedIn(`${pt.givenName} ${pt.familyName}`);
                        })
                      }
                    >
                      {p.checkIn}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function QueueScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const q = t.queue;
  const { data, error } = useLoad<{
    today: string;
    waiting: Encounter[];
    inProgress: Encounter[];
    done: Encounter[];
  }>('/api/queue');
  const name = usePatientNamer();
  const { run, busy, message } = useAction();
  if (data === undefined) return <Loading error={error} />;
  const list = (items: Encounter[], action?: { label: string; type: string }): JSX.Element =>
    items.length === 0 ? (
      <p>{q.empty}</p>
    ) : (
      <ul class="cards">
        {items.map((e) => (
          <li key={e.encounterId}>
            {name(e.patientId)}{' '}
            {action === undefined ? null : (
              <button
                type="button"
                disabled={busy}
                aria-label={`${action.label}: ${name(e.patientId)}`}
                onClick={() => run((key) => record(t, key, action.type, { encounterId: e.encounterId }))}
              >
                {action.label}
              </button>
            )}
          </li>
        ))}
      </ul>
    );
  return (
    <>
      <h1>{q.title(data.today)}</h1>
      {message}
      <h2>{q.waiting}</h2>
      {list(data.waiting, { label: q.start, type: 'EncounterStarted' })}
      <h2>{q.inProgress}</h2>
      {list(data.inProgress, { label: q.checkOut, type: 'EncounterCompleted' })}
      <h2>{q.done}</h2>
      {list(data.done)}
    </>
  );
}

function PatientSelect({ value, onChange }: { value: string; onChange: (v: string) => void }): JSX.Element {
  const { t } = useContext(AppContext);
  const { data } = useLoad<Patient[]>('/api/patients');
  return (
    <Field label={t.vaccinate.patient}>
      <select name="patientId" required value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">{t.vaccinate.choose}</option>
        {(data ?? []).map((p) => (
          <option key={p.id} value={p.id}>
            {p.givenName} {p.familyName} ({p.nationalId})
          </option>
        ))}
      </select>
    </Field>
  );
}

function AntigenSelect({ value, onChange }: { value: string; onChange: (v: string) => void }): JSX.Element {
  const { t } = useContext(AppContext);
  return (
    <Field label={t.vaccinate.antigen}>
      <select name="antigen" value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {ANTIGENS.map((a) => (
          <option key={a} value={a}>
            {a}
          </option>
        ))}
      </select>
    </Field>
  );
}

function VaccinateScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const v = t.vaccinate;
  const stock = useLoad<{ lots: Lot[] }>('/api/stock');
  const { run, busy, message } = useAction();
  const [patientId, setPatient] = useState('');
  const [antigen, setAntigen] = useState('BCG');
  const [dose, setDose] = useState('1');
  const [lot, setLot] = useState('');
  const [date, setDate] = useState(today());
  const lots = (stock.data?.lots ?? []).filter((l) => l.antigen === antigen);
  return (
    <>
      <h1>{v.title}</h1>
      {message}
      <form
        class="form"
        aria-label={v.title}
        onSubmit={(e) => {
          e.preventDefault();
          run((key) =>
            record(t, key, 'VaccinationAdministered', {
              patientId,
              antigen,
              dose: Number(dose),
              lot: lot === '' ? (lots[0]?.lot ?? '') : lot,
              date,
            }),
          );
        }}
      >
        <PatientSelect value={patientId} onChange={setPatient} />
        <AntigenSelect value={antigen} onChange={setAntigen} />
        <Field label={v.dose}>
          <input
            name="dose"
            type="number"
            min={1}
            max={10}
            required
            value={dose}
            onInput={(e) => setDose(e.currentTarget.value)}
          />
        </Field>
        <Field label={v.lot}>
          <input name="lot" list="lots" required value={lot} onInput={(e) => setLot(e.currentTarget.value)} />
          <datalist id="lots">
            {lots.map((l) => (
              <option key={l.lot} value={l.lot}>
                {`${l.lot} (${l.balance})`}
              </option>
            ))}
          </datalist>
        </Field>
        <Field label={v.date}>
          <input
            name="date"
            type="date"
            required
            value={date}
            onInput={(e) => setDate(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={busy}>
          {v.record}
        </button>
      </form>
    </>
  );
}

function StockScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const s = t.stock;
  const { data, error } = useLoad<{ lots: Lot[] }>('/api/stock');
  const { run, busy, message } = useAction();
  const [lot, setLot] = useState('');
  const [antigen, setAntigen] = useState('BCG');
  const [quantity, setQuantity] = useState('10');
  const [expiry, setExpiry] = useState('');
  return (
    <>
      <h1>{s.title}</h1>
      {message}
      <form
        class="form"
        aria-labelledby="receive-title"
        onSubmit={(e) => {
          e.preventDefault();
          run((key) => record(t, key, 'StockReceived', { lot, antigen, quantity: Number(quantity), expiry }));
        }}
      >
        <h2 id="receive-title">{s.receive}</h2>
        <Field label={s.lot}>
          <input name="lot" required value={lot} onInput={(e) => setLot(e.currentTarget.value)} />
        </Field>
        <AntigenSelect value={antigen} onChange={setAntigen} />
        <Field label={s.quantity}>
          <input
            name="quantity"
            type="number"
            min={1}
            required
            value={quantity}
            onInput={(e) => setQuantity(e.currentTarget.value)}
          />
        </Field>
        <Field label={s.expiry}>
          <input
            name="expiry"
            type="date"
            required
            value={expiry}
            onInput={(e) => setExpiry(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={busy}>
          {s.receive}
        </button>
      </form>
      <h2>{s.lots}</h2>
      {data === undefined ? (
        <Loading error={error} />
      ) : data.lots.length === 0 ? (
        <p>{s.empty}</p>
      ) : (
        <div class="scroll">
          <table data-testid="lots">
            <thead>
              <tr>
                <th scope="col">{s.lot}</th>
                <th scope="col">{s.antigen}</th>
                <th scope="col">{s.expiry}</th>
                <th scope="col">{s.balance}</th>
              </tr>
            </thead>
            <tbody>
              {data.lots.map((l) => (
                <tr key={l.lot}>
                  <td>{l.lot}</td>
                  <td>{l.antigen}</td>
                  <td>{l.expiry}</td>
                  <td>{l.balance}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function AppointmentsScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const a = t.appointments;
  const { data, error } = useLoad<{ upcoming: Appointment[]; missed: Appointment[] }>('/api/appointments');
  const name = usePatientNamer();
  const { run, busy, message } = useAction();
  const [patientId, setPatient] = useState('');
  const [antigen, setAntigen] = useState('Measles');
  const [dose, setDose] = useState('1');
  const [date, setDate] = useState(today());
  const list = (items: Appointment[]): JSX.Element =>
    items.length === 0 ? (
      <p>{a.empty}</p>
    ) : (
      <ul class="cards">
        {items.map((x) => (
          <li key={x.appointmentId}>{describeEvent(t, 'AppointmentScheduled', x, name)}</li>
        ))}
      </ul>
    );
  return (
    <>
      <h1>{a.title}</h1>
      {message}
      <form
        class="form"
        aria-labelledby="book-title"
        onSubmit={(e) => {
          e.preventDefault();
          run((key) =>
            record(t, key, 'AppointmentScheduled', {
              appointmentId: randomId('A'),
              patientId,
              antigen,
              dose: Number(dose),
              date,
            }),
          );
        }}
      >
        <h2 id="book-title">{a.book}</h2>
        <PatientSelect value={patientId} onChange={setPatient} />
        <AntigenSelect value={antigen} onChange={setAntigen} />
        <Field label={t.vaccinate.dose}>
          <input
            name="dose"
            type="number"
            min={1}
            max={10}
            required
            value={dose}
            onInput={(e) => setDose(e.currentTarget.value)}
          />
        </Field>
        <Field label={a.date}>
          <input
            name="date"
            type="date"
            required
            value={date}
            onInput={(e) => setDate(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={busy}>
          {a.book}
        </button>
      </form>
      {data === undefined ? (
        <Loading error={error} />
      ) : (
        <>
          <h2>{a.upcoming}</h2>
          {list(data.upcoming)}
          <h2>{a.missed}</h2>
          {list(data.missed)}
        </>
      )}
    </>
  );
}

function CountersScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const c = t.counters;
  const { data, error } = useLoad<Record<string, number>>('/api/counters');
  return (
    <>
      <h1>{c.title}</h1>
      <p>{c.intro}</p>
      {data === undefined ? (
        <Loading error={error} />
      ) : Object.keys(data).length === 0 ? (
        <p>{c.empty}</p>
      ) : (
        <table data-testid="counters">
          <thead>
            <tr>
              <th scope="col">{c.name}</th>
              <th scope="col">{c.value}</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(data).map(([k, n]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

// ---------------------------------------------------------------------------------------------
// The page

/** The route of a location hash: a screen, or `inspect` with an event id. */
export function parseRoute(hash: string): { screen: Screen } | { screen: 'inspect'; id: string } {
  const path = hash.replace(/^#\/?/, '');
  if (path.startsWith('inspect/')) return { screen: 'inspect', id: decodeURIComponent(path.slice(8)) };
  const screen = SCREENS.find((s) => s === path);
  return { screen: screen ?? 'attention' };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

/** The live status pushed by the agent, and whether the stream is open. */
function useLiveStatus(): { live: LiveStatus | undefined; connected: boolean; version: number } {
  const [live, setLive] = useState<LiveStatus | undefined>(undefined);
  const [connected, setConnected] = useState(false);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    // EventSource reconnects by itself (the agent sends `retry: 2000`).
    const source = new EventSource('/api/stream');
    source.addEventListener('status', (e) => {
      try {
        setLive(JSON.parse((e as MessageEvent<string>).data) as LiveStatus);
        setConnected(true);
        setVersion((v) => v + 1);
      } catch {
        // A malformed push is ignored; the next one replaces it.
      }
    });
    source.onerror = () => setConnected(false);
    return () => source.close();
  }, []);
  return { live, connected, version };
}

/** The Sync Centre page. */
export function App({ t }: { t: SyncCentreStrings }): JSX.Element {
  const route = parseRoute(useHash());
  const { live, connected, version } = useLiveStatus();
  useEffect(() => {
    document.title = t.appTitle;
  }, [t]);
  const screen = ((): JSX.Element => {
    switch (route.screen) {
      case 'inspect':
        return <InspectScreen id={route.id} />;
      case 'attention':
        return <AttentionScreen />;
      case 'outbox':
        return <OutboxScreen />;
      case 'patients':
        return <PatientsScreen />;
      case 'queue':
        return <QueueScreen />;
      case 'vaccinate':
        return <VaccinateScreen />;
      case 'stock':
        return <StockScreen />;
      case 'appointments':
        return <AppointmentsScreen />;
      case 'counters':
        return <CountersScreen />;
      case 'environment':
        return <EnvironmentScreen />;
      case 'audit':
        return <AuditScreen />;
    }
  })();
  return (
    <AppContext.Provider value={{ t, version }}>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        {t.skipToContent}
      </a>
      <header>
        <p class="brand">{t.appTitle}</p>
        <StatusBar live={live} connected={connected} />
        <nav aria-label={t.nav.label}>
          <ul>
            {SCREENS.map((s) => (
              <li key={s}>
                <a href={`#/${s}`} aria-current={route.screen === s ? 'page' : undefined}>
                  {t.nav[s]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {screen}
      </main>
    </AppContext.Provider>
  );
}
