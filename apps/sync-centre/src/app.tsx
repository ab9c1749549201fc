// The Sync Centre page: a status bar pushed live by the agent (`GET /api/stream`), the sync
// screens (needs attention, outbox, inspect, environment, audit) and enough domain screens to drive
// a facility by hand. Every text comes from the catalogue (strings.ts).
import { createContext, Fragment, type ComponentChildren, type JSX } from 'preact';
import { useCallback, useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError, getJson, getPage, newIdempotencyKey, postJson } from './api.js';
import {
  conflictFields,
  daysToResubmit,
  defaultRange,
  demographicChanges,
  describeCode,
  describeEvent,
  describeRule,
  discardNeedsAdmin,
  groupByCode,
  hlcTime,
  humanBytes,
  keepMine,
  patientNamer,
  stockCorrection,
  verdictHistory,
  type VerdictEntry,
} from './describe.js';
import { en, type SyncCentreStrings } from './strings.js';
import type {
  Appointment,
  AuditEntry,
  DeadletterInfo,
  Encounter,
  EnvironmentInfo,
  EventInfo,
  FullStatus,
  IntegrityReport,
  LiveStatus,
  Lot,
  Patient,
  ResubmitResult,
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
  'adjust',
  'appointments',
  'counters',
  'integrity',
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

/** A refusal the page itself makes (no request was refused): shown as its message alone. */
class Notice extends Error {}

function errorText(t: SyncCentreStrings, e: unknown): string {
  if (e instanceof Notice) return e.message;
  // The code stays visible (support asks for it); the words say what it means for the user.
  if (e instanceof ApiError) return t.common.error(e.code, t.apiErrors[e.code] ?? e.message);
  return t.common.error('ERROR', e instanceof Error ? e.message : String(e));
}

/** Loads `path` again whenever the agent pushed a change (no polling). */
function useLoad<T>(
  path: string,
  load: (path: string) => Promise<T> = getJson,
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const { t, version } = useContext(AppContext);
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    let current = true;
    load(path).then(
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
  say: (ok: boolean, text: string) => void;
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
  const say = useCallback((ok: boolean, text: string) => setMessage({ ok, text }), []);
  const shown =
    message === undefined ? null : (
      <p class={message.ok ? 'note ok' : 'note bad'} role={message.ok ? 'status' : 'alert'}>
        {message.text}
      </p>
    );
  return { run, say, busy, message: shown };
}

function Loading({ error }: { error: string | undefined }): JSX.Element {
  const { t } = useContext(AppContext);
  return error === undefined ? <p>{t.common.loading}</p> : <p class="note bad">{error}</p>;
}

/** What every form control of the page takes: its label, name, value and where a new value goes. */
interface FieldProps {
  readonly label: string;
  readonly name: string;
  readonly value: string;
  readonly onValue: (value: string) => void;
  readonly required?: boolean;
  /** A sentence under the control, read out with it (`aria-describedby`). */
  readonly hint?: string;
}

/** The label, control and hint markup every field shares; ids made here tie them together. */
function Field({
  label,
  hint,
  control,
}: {
  label: string;
  hint: string | undefined;
  control: (ids: { id: string; describedBy: string | undefined }) => ComponentChildren;
}): JSX.Element {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {control({ id, describedBy: hint === undefined ? undefined : hintId })}
      {hint === undefined ? null : (
        <small id={hintId} class="muted">
          {hint}
        </small>
      )}
    </div>
  );
}

/** A labelled `<input>` (text, number, date or password); `children` go after it (a `<datalist>`). */
function InputField(
  props: FieldProps & {
    readonly type?: 'text' | 'number' | 'date' | 'password';
    readonly min?: number;
    readonly max?: number;
    readonly maxLength?: number;
    readonly list?: string;
    readonly autoComplete?: string;
    readonly children?: ComponentChildren;
  },
): JSX.Element {
  return (
    <Field
      label={props.label}
      hint={props.hint}
      control={({ id, describedBy }) => (
        <>
          <input
            id={id}
            name={props.name}
            type={props.type ?? 'text'}
            value={props.value}
            required={props.required}
            min={props.min}
            max={props.max}
            maxLength={props.maxLength}
            list={props.list}
            autoComplete={props.autoComplete}
            aria-describedby={describedBy}
            onInput={(e) => props.onValue(e.currentTarget.value)}
          />
          {props.children}
        </>
      )}
    />
  );
}

/** A labelled `<select>` of `options` (value and the words shown for it). */
function SelectField(
  props: FieldProps & { readonly options: readonly { readonly value: string; readonly label: string }[] },
): JSX.Element {
  return (
    <Field
      label={props.label}
      hint={props.hint}
      control={({ id, describedBy }) => (
        <select
          id={id}
          name={props.name}
          value={props.value}
          required={props.required}
          aria-describedby={describedBy}
          onChange={(e) => props.onValue(e.currentTarget.value)}
        >
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    />
  );
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

/** Most patients one `GET /api/patients?ids=…` asks for (the agent's limit). */
const PATIENT_BATCH = 500;

/** The patients a screen names, loaded by id: see {@link usePatientBook}. */
interface PatientBook {
  /** The patient with this id, once loaded: asking for it during a render loads it. */
  readonly get: (id: unknown) => Patient | undefined;
  /** "Amina K." (the id until the patient is loaded, or when nobody has that id). */
  readonly name: (id: unknown) => string;
}

/**
 * Names patients by id without loading the facility's whole patient list (thousands of patients,
 * reloaded on every change the live stream reports): each render notes the ids it asked for, and
 * after it the ones not loaded yet (for this status version) are fetched with
 * `GET /api/patients?ids=…`; the next render has them.
 */
function usePatientBook(): PatientBook {
  const { version } = useContext(AppContext);
  const [known, setKnown] = useState<ReadonlyMap<string, Patient>>(new Map());
  const asked = useRef(new Set<string>());
  const fetched = useRef({ version, ids: new Set<string>() });
  asked.current = new Set();
  useEffect(() => {
    // A new status version may have changed a name: what the screen shows is asked again.
    if (fetched.current.version !== version) fetched.current = { version, ids: new Set() };
    const round = fetched.current;
    const missing = [...asked.current].filter((id) => !round.ids.has(id)).slice(0, PATIENT_BATCH);
    if (missing.length === 0) return;
    for (const id of missing) round.ids.add(id);
    const query = missing.map((id) => `ids=${encodeURIComponent(id)}`).join('&');
    getJson<Patient[]>(`/api/patients?${query}`).then(
      (found) =>
        setKnown((before) => {
          const next = new Map(before);
          for (const patient of found) next.set(patient.id, patient);
          return next;
        }),
      // Not answered (offline page, agent restarting): asked again after the next render.
      () => {
        for (const id of missing) round.ids.delete(id);
      },
    );
  });
  const get = (id: unknown): Patient | undefined => {
    if (typeof id !== 'string' || id === '') return undefined;
    asked.current.add(id);
    return known.get(id);
  };
  return { get, name: patientNamer(get) };
}

function usePatientNamer(): (id: unknown) => string {
  return usePatientBook().name;
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

/**
 * "Leave server version" (a discard event) after a confirmation with a reason, and the admin
 * password where the facility's policy guards the event type. A refusal (a wrong password: 403)
 * is shown in the dialog, which stays open; nothing is recorded then.
 */
function DiscardDialog({
  target,
  what,
  needsAdmin,
  onDone,
  onClose,
}: {
  target: string;
  what: string;
  needsAdmin: boolean;
  onDone: () => void;
  onClose: () => void;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState(t.discard.defaultReason);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const body = {
      reason: reason.trim() === '' ? t.discard.defaultReason : reason,
      ...(password === '' ? {} : { adminPassword: password }),
    };
    postJson(`/api/events/${encodeURIComponent(target)}/discard`, body, newIdempotencyKey()).then(
      () => onDone(),
      (err: unknown) => {
        // A refused password is typed again, never kept in the form.
        setPassword('');
        setBusy(false);
        setError(errorText(t, err));
      },
    );
  };
  return (
    <dialog ref={ref} aria-labelledby="discard-title" onClose={onClose}>
      <form method="dialog" onSubmit={submit}>
        <h2 id="discard-title">{t.discard.title}</h2>
        <p>{t.discard.explain(what)}</p>
        <InputField
          label={t.discard.reason}
          name="reason"
          value={reason}
          maxLength={4096}
          onValue={setReason}
        />
        <InputField
          label={t.discard.adminPassword}
          name="adminPassword"
          type="password"
          autoComplete="off"
          required={needsAdmin}
          hint={needsAdmin ? t.discard.adminNeeded : t.discard.adminOptional}
          value={password}
          onValue={setPassword}
        />
        {error === undefined ? null : (
          <p class="note bad" role="alert" data-testid="discard-error">
            {error}
          </p>
        )}
        {busy ? <p role="status">{t.discard.working}</p> : null}
        <div class="buttons">
          <button type="submit" class="danger" disabled={busy}>
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
        <InputField
          key={k}
          label={k}
          name={k}
          value={values[k] ?? ''}
          onValue={(v) => setValues((old) => ({ ...old, [k]: v }))}
        />
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

/** A value of an event's data as text (strings as they are, the rest as JSON; nothing as a dash). */
function shown(v: unknown): string {
  return v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** Mine against the confirmed value, field by field (a 409). */
function ConflictTable({ rows }: { rows: ReturnType<typeof conflictFields> }): JSX.Element {
  const { t } = useContext(AppContext);
  const a = t.attention;
  return (
    <div class="scroll">
      <table class="compare" data-testid="conflict">
        <caption>{a.compareCaption}</caption>
        <thead>
          <tr>
            <th scope="col">{a.field}</th>
            <th scope="col">{a.mine}</th>
            <th scope="col">{a.confirmed}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.field} class={r.differs ? 'differs' : undefined} data-field={r.field}>
              <th scope="row">{r.field}</th>
              <td data-testid="mine">{shown(r.mine)}</td>
              <td data-testid="confirmed">
                {shown(r.confirmed)}
                {r.differs ? null : <span class="muted"> {a.same}</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DeadletterCard({
  item,
  patients,
  name,
  run,
  say,
  busy,
}: {
  item: DeadletterInfo;
  patients: PatientBook;
  name: (id: unknown) => string;
  run: (action: (key: string) => Promise<string>) => void;
  say: (ok: boolean, text: string) => void;
  busy: boolean;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const [mode, setMode] = useState<'none' | 'discard' | 'amend'>('none');
  const what = describeEvent(t, item.type, item.data, name);
  const rule = describeRule(t, item.rule, item.details);
  const retryable = item.code !== 403;
  // A 409 is resolved by keep mine / keep theirs / edit; a retry would meet the same conflict.
  const conflict = item.code === 409;
  // A duplicate national id shows the patient holding it: loaded by id, as the names are.
  const holder = conflict ? patients.get(item.details?.['existingPatientId']) : undefined;
  const rows = conflict ? conflictFields(item, holder === undefined ? [] : [holder]) : [];
  const mine = conflict ? keepMine(item) : undefined;
  const keepMineNow = (plan: NonNullable<typeof mine>) =>
    run(async (key) => {
      // The device takes the basis from its own view: it must hold the confirmed version first.
      for (const id of plan.basis) {
        let status: string | undefined;
        try {
          status = (await getJson<EventInfo>(`/api/events/${encodeURIComponent(id)}`)).status;
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
        }
        if (status !== 'accepted') throw new Notice(t.attention.keepMineNotYet);
      }
      await postJson('/api/events', plan.draft, key);
      return t.attention.keptMine;
    });
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
        {/* A 409's numbers are the comparison table below. */}
        {rule.numbers === undefined || rows.length > 0 ? null : (
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
      {rule.heals === undefined ? null : <p data-testid="heals">{rule.heals}</p>}
      {rows.length === 0 ? null : <ConflictTable rows={rows} />}
      {conflict && mine === undefined && item.rule === 'RULE_DUPLICATE_NATIONAL_ID' ? (
        <p class="muted">{t.attention.duplicateHint}</p>
      ) : null}
      <div class="buttons">
        <a class="button" href={`#/inspect/${encodeURIComponent(item.id)}`}>
          {t.common.inspect}
        </a>
        {mine === undefined ? null : (
          <button type="button" disabled={busy} onClick={() => keepMineNow(mine)}>
            {t.attention.keepMine}
          </button>
        )}
        {retryable && !conflict ? (
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
          {conflict ? t.attention.keepTheirs : t.attention.discard}
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
          target={item.id}
          what={what}
          needsAdmin={discardNeedsAdmin(item.type)}
          onClose={() => setMode('none')}
          onDone={() => {
            setMode('none');
            say(true, t.attention.discarded);
          }}
        />
      ) : null}
    </li>
  );
}

function AttentionScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<DeadletterInfo[]>('/api/deadletters');
  const patients = usePatientBook();
  const name = patients.name;
  const { run, say, busy, message } = useAction();
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
                    <DeadletterCard
                      key={item.id}
                      item={item}
                      patients={patients}
                      name={name}
                      run={run}
                      say={say}
                      busy={busy}
                    />
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

/** One verdict in words: accepted with its number, or the code with its meaning, the rule and numbers. */
function VerdictLine({ v }: { v: VerdictEntry }): JSX.Element {
  const { t } = useContext(AppContext);
  const at = v.at === undefined ? null : <span class="muted"> {t.inspect.verdictAt(time(v.at))}</span>;
  if (v.outcome === 'accepted') {
    return (
      <p>
        {t.inspect.accepted(v.seq ?? 0)}
        {at}
      </p>
    );
  }
  const rule = describeRule(t, v.rule ?? null, v.details);
  return (
    <>
      <p>
        <strong>
          {t.inspect.rejected(String(v.code ?? '?'))}: {describeCode(t, v.code ?? null).meaning}
        </strong>
        {at}
      </p>
      <dl class="facts">
        <dt>{t.attention.rule}</dt>
        <dd>
          {rule.name} <span class="muted">({v.rule ?? '—'})</span>
        </dd>
        <dt>{t.attention.reason}</dt>
        <dd>{v.reason ?? '—'}</dd>
        {rule.numbers === undefined ? null : (
          <>
            <dt>{t.attention.numbers}</dt>
            <dd>{rule.numbers}</dd>
          </>
        )}
      </dl>
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
  const fields =
    typeof e.data === 'object' && e.data !== null ? Object.entries(e.data as Record<string, unknown>) : [];
  const history = verdictHistory(data);
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
        <dd data-testid="inspect-status">{t.inspect.statuses[data.status] ?? data.status}</dd>
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
      <h3>{t.inspect.verdicts}</h3>
      {history.length === 0 ? (
        <p>{t.inspect.verdictNone}</p>
      ) : (
        // Newest last: the story of the event reads top to bottom.
        <ol class="cards" data-testid="verdicts">
          {history.map((v, i) => (
            <li key={v.verdictId ?? i}>
              <VerdictLine v={v} />
              {v.verdictId === undefined ? null : <p class="muted mono">{v.verdictId}</p>}
            </li>
          ))}
        </ol>
      )}
      {data.verdicts === undefined && history.length > 0 ? <p class="muted">{t.inspect.latestOnly}</p> : null}
      <h3>{t.inspect.resolvedBy}</h3>
      {data.resolvedBy === undefined || data.resolvedBy === null ? (
        <p>{t.inspect.notResolved}</p>
      ) : (
        <p data-testid="resolved-by">
          <a class="mono" href={`#/inspect/${encodeURIComponent(data.resolvedBy)}`}>
            {data.resolvedBy}
          </a>
        </p>
      )}
    </>
  );
}

/**
 * `GET /api/environment`, read once when the screen opens (measuring the data folder walks it:
 * not on every push); `older` when the agent predates the route (404).
 */
function useEnvironment(): EnvironmentInfo | 'older' | undefined {
  const [env, setEnv] = useState<EnvironmentInfo | 'older' | undefined>(undefined);
  useEffect(() => {
    let current = true;
    getJson<EnvironmentInfo>('/api/environment').then(
      (d) => {
        if (current) setEnv(d);
      },
      (e: unknown) => {
        // Any failure falls back to what /api/status tells; only the extra facts are missing.
        if (current) setEnv(e instanceof ApiError && e.status === 404 ? 'older' : undefined);
      },
    );
    return () => {
      current = false;
    };
  }, []);
  return env;
}

function EnvironmentScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const { data, error } = useLoad<FullStatus>('/api/status');
  const env = useEnvironment();
  const { run, busy, message } = useAction();
  if (data === undefined) return <Loading error={error} />;
  const e = t.environment;
  const extra = typeof env === 'object' ? env : undefined;
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
      {env === 'older' ? (
        <p class="muted" data-testid="env-older">
          {e.olderAgent}
        </p>
      ) : null}
      <dl class="facts">
        <dt>{e.deviceName}</dt>
        <dd>{data.name}</dd>
        <dt>{e.deviceId}</dt>
        <dd class="mono" data-testid="env-device">
          {data.device}
        </dd>
        {extra?.keyFingerprint === undefined ? null : (
          <>
            <dt>{e.keyFingerprint}</dt>
            <dd class="mono">{extra.keyFingerprint}</dd>
          </>
        )}
        <dt>{e.facility}</dt>
        <dd>{data.facility}</dd>
        <dt>{e.relayAddress}</dt>
        <dd class="mono">{data.relay?.url ?? t.common.none}</dd>
        <dt>{e.relayId}</dt>
        <dd class="mono">{data.relay?.id ?? t.common.none}</dd>
        {extra?.version === undefined ? null : (
          <>
            <dt>{e.agentVersion}</dt>
            <dd data-testid="env-version">{extra.version}</dd>
          </>
        )}
        {extra?.node === undefined ? null : (
          <>
            <dt>{e.node}</dt>
            <dd>{extra.node}</dd>
          </>
        )}
        <dt>{e.pageVersion}</dt>
        <dd>{PAGE_VERSION}</dd>
        {extra?.dataFolder === undefined ? null : (
          <>
            <dt>{e.dataFolder}</dt>
            <dd class="mono" data-testid="env-data-folder">
              {extra.dataFolder}
            </dd>
          </>
        )}
        {typeof extra?.dataFolderBytes !== 'number' ? null : (
          <>
            <dt>{e.dataFolderSize}</dt>
            <dd data-testid="env-data-size" title={`${extra.dataFolderBytes} B`}>
              {humanBytes(extra.dataFolderBytes)}
            </dd>
          </>
        )}
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

/**
 * Compare with the server, per UTC day, and re-submit what it lacks: the admin password is
 * exchanged once for a `resubmit` grant, then each differing day is re-submitted on its own so
 * the progress shows day by day.
 */
function IntegrityScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const g = t.integrity;
  const [range, setRange] = useState(() => defaultRange(Date.now()));
  const [password, setPassword] = useState('');
  const [report, setReport] = useState<IntegrityReport | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [steps, setSteps] = useState<string[]>([]);
  const [rows, setRows] = useState<ResubmitResult['days']>([]);
  const query = `from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}`;

  const act = (work: () => Promise<void>): void => {
    setBusy(true);
    setError(undefined);
    work().then(
      () => setBusy(false),
      (e: unknown) => {
        setBusy(false);
        setError(errorText(t, e));
      },
    );
  };
  const compare = (): void => {
    // An old answer is never shown as if it were the new one.
    setReport(undefined);
    act(async () => {
      setReport(await getJson<IntegrityReport>(`/api/integrity?${query}`));
    });
  };
  const resubmit = (e: Event): void => {
    e.preventDefault();
    const typed = password;
    // Typed once per action, never kept: a refusal asks for it again.
    setPassword('');
    setRows([]);
    const step = (text: string): void => setSteps((s) => [...s, text]);
    setSteps([g.comparing]);
    act(async () => {
      const key = newIdempotencyKey();
      const found = await getJson<IntegrityReport>(`/api/integrity?${query}`);
      setReport(found);
      const days = daysToResubmit(found.days);
      if (days.length === 0) return step(g.nothingToResubmit);
      step(g.elevating);
      const { grant } = await postJson<{ grant: unknown }>(
        '/api/elevate',
        { adminPassword: typed, action: 'resubmit' },
        `${key}.elevate`,
      );
      const done: ResubmitResult['days'][number][] = [];
      for (const [i, day] of days.entries()) {
        step(g.progress(i + 1, days.length, day));
        const r = await postJson<ResubmitResult>(
          '/api/resubmit',
          { from: day, to: day, grant },
          `${key}.${i}`,
        );
        done.push(...r.days);
        setRows([...done]);
      }
      step(
        g.resubmitted(
          done.reduce((n, d) => n + d.resent, 0),
          done.length,
        ),
      );
    });
  };
  const differing = report === undefined ? 0 : daysToResubmit(report.days).length;
  return (
    <>
      <h1>{g.title}</h1>
      <p>{g.intro}</p>
      <form
        class="form"
        aria-label={g.compare}
        onSubmit={(e) => {
          e.preventDefault();
          compare();
        }}
      >
        <InputField
          label={g.from}
          name="from"
          type="date"
          required
          value={range.from}
          onValue={(from) => setRange((r) => ({ ...r, from }))}
        />
        <InputField
          label={g.to}
          name="to"
          type="date"
          required
          value={range.to}
          onValue={(to) => setRange((r) => ({ ...r, to }))}
        />
        <button type="submit" disabled={busy}>
          {g.compare}
        </button>
      </form>
      {error === undefined ? null : (
        <p class="note bad" role="alert">
          {error}
        </p>
      )}
      {report === undefined ? (
        busy ? (
          <p role="status">{g.comparing}</p>
        ) : null
      ) : (
        <>
          <p role="status" data-testid="integrity-summary">
            {report.days.length === 0
              ? g.noDays
              : differing === 0
                ? g.allMatch(report.days.length)
                : g.someDiffer(differing)}
          </p>
          {report.days.length === 0 ? null : (
            <div class="scroll">
              <table data-testid="integrity-days">
                <thead>
                  <tr>
                    <th scope="col">{g.day}</th>
                    <th scope="col">{g.device}</th>
                    <th scope="col">{g.relay}</th>
                    <th scope="col">{g.match}</th>
                  </tr>
                </thead>
                <tbody>
                  {report.days.map((d) => (
                    <tr key={d.day} data-day={d.day} class={d.match ? undefined : 'differs'}>
                      <th scope="row">{d.day}</th>
                      <td>{d.device}</td>
                      <td>{d.relay}</td>
                      <td>{d.match ? g.same : g.differs}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      <h2 id="resubmit-title">{g.resubmitTitle}</h2>
      <p>{g.resubmitIntro}</p>
      <form class="form" aria-labelledby="resubmit-title" onSubmit={resubmit}>
        <InputField
          label={g.adminPassword}
          name="adminPassword"
          type="password"
          autoComplete="off"
          required
          value={password}
          onValue={setPassword}
        />
        <button type="submit" disabled={busy}>
          {g.resubmit}
        </button>
      </form>
      {steps.length === 0 ? null : (
        <ol class="steps" data-testid="resubmit-progress" aria-live="polite">
          {steps.map((s, i) => (
            <li key={i}>{s}</li>
          ))}
        </ol>
      )}
      {rows.length === 0 ? null : (
        <div class="scroll">
          <table data-testid="resubmit-days">
            <thead>
              <tr>
                <th scope="col">{g.day}</th>
                <th scope="col">{g.missing}</th>
                <th scope="col">{g.resent}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.day} data-day={d.day}>
                  <th scope="row">{d.day}</th>
                  <td data-testid="missing">{d.missing}</td>
                  <td data-testid="resent">{d.resent}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
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

/** The demographics a patient form edits, as the form holds them. */
type PatientForm = Record<'nationalId' | 'givenName' | 'familyName' | 'birthDate' | 'sex', string>;

/** The five demographic fields, shared by registration and the edit form. */
function PatientFields({
  form,
  set,
}: {
  form: PatientForm;
  set: (k: keyof PatientForm) => (v: string) => void;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const p = t.patients;
  return (
    <>
      <InputField
        label={p.nationalId}
        name="nationalId"
        required
        value={form.nationalId}
        onValue={set('nationalId')}
      />
      <InputField
        label={p.givenName}
        name="givenName"
        required
        value={form.givenName}
        onValue={set('givenName')}
      />
      <InputField
        label={p.familyName}
        name="familyName"
        required
        value={form.familyName}
        onValue={set('familyName')}
      />
      <InputField
        label={p.birthDate}
        name="birthDate"
        type="date"
        required
        value={form.birthDate}
        onValue={set('birthDate')}
      />
      <SelectField
        label={p.sex}
        name="sex"
        value={form.sex}
        onValue={set('sex')}
        options={Object.entries(p.sexes).map(([value, label]) => ({ value, label }))}
      />
    </>
  );
}

/** Changes a registered patient's details: one `PatientDemographicsUpdated` with the fields changed. */
function PatientEditForm({
  patient,
  run,
  onClose,
}: {
  patient: Patient;
  run: (action: (key: string) => Promise<string>) => void;
  onClose: () => void;
}): JSX.Element {
  const { t } = useContext(AppContext);
  const p = t.patients;
  const heading = useRef<HTMLHeadingElement>(null);
  const [form, setForm] = useState<PatientForm>({
    nationalId: patient.nationalId,
    givenName: patient.givenName,
    familyName: patient.familyName,
    birthDate: patient.birthDate,
    sex: patient.sex,
  });
  useEffect(() => {
    // Opened from a row further down: move the reader to the form.
    heading.current?.focus();
  }, []);
  const who = `${patient.givenName} ${patient.familyName}`;
  return (
    <form
      class="form"
      aria-labelledby="edit-title"
      onSubmit={(e) => {
        e.preventDefault();
        const changes = demographicChanges(patient, form);
        run(async (key) => {
          if (Object.keys(changes).length === 0) throw new Notice(p.nothingChanged);
          const done = await record(t, key, 'PatientDemographicsUpdated', { patientId: patient.id, changes });
          onClose();
          return done;
        });
      }}
    >
      <h2 id="edit-title" tabIndex={-1} ref={heading}>
        {p.editTitle(who)}
      </h2>
      <PatientFields form={form} set={(k) => (v) => setForm((f) => ({ ...f, [k]: v }))} />
      <div class="buttons">
        <button type="submit">{p.saveChanges}</button>
        <button type="button" onClick={onClose}>
          {t.common.cancel}
        </button>
      </div>
    </form>
  );
}

/** How many patients a list shows at first, and adds with each "Show more". */
const PATIENTS_PAGE = 50;

/** `value`, once it has not changed for `ms` (a search is sent when the typing pauses). */
function useSettled(value: string, ms: number): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/**
 * A page of `GET /api/patients`: the first `limit` patients matching `search` (all when empty),
 * asked once the typing pauses: a search reads every patient's record on the tablet.
 */
function usePatientSearch(
  search: string,
  limit: number,
): ReturnType<typeof useLoad<{ items: Patient[]; total: number }>> {
  const text = useSettled(search.trim(), 250);
  const query = text === '' ? '' : `&q=${encodeURIComponent(text.slice(0, 200))}`;
  return useLoad(`/api/patients?limit=${limit}${query}`, getPage<Patient>);
}

function PatientsScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const p = t.patients;
  const [search, setSearch] = useState('');
  const [shown, setShown] = useState(PATIENTS_PAGE);
  const { data: page, error } = usePatientSearch(search, shown);
  const data = page?.items;
  const { run, busy, message } = useAction();
  const [editing, setEditing] = useState<string | undefined>(undefined);
  const [form, setForm] = useState<PatientForm>({
    nationalId: '',
    givenName: '',
    familyName: '',
    birthDate: '',
    sex: 'female',
  });
  const set = (k: keyof PatientForm) => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  const edited = editing === undefined ? undefined : data?.find((pt) => pt.id === editing);
  return (
    <>
      <h1>{p.title}</h1>
      {message}
      {edited === undefined ? null : (
        <PatientEditForm key={edited.id} patient={edited} run={run} onClose={() => setEditing(undefined)} />
      )}
      <form
        class="form"
        aria-labelledby="register-title"
        onSubmit={(e) => {
          e.preventDefault();
          run((key) => record(t, key, 'PatientRegistered', { patientId: randomId('P'), ...form }));
        }}
      >
        <h2 id="register-title">{p.register}</h2>
        <PatientFields form={form} set={set} />
        <button type="submit" disabled={busy}>
          {p.register}
        </button>
      </form>
      <h2>{p.list}</h2>
      <InputField
        label={p.search}
        name="patientSearch"
        hint={p.searchHint}
        autoComplete="off"
        value={search}
        onValue={(v) => {
          setSearch(v);
          setShown(PATIENTS_PAGE);
        }}
      />
      {page === undefined || data === undefined ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p>{search.trim() === '' ? p.empty : p.noMatch}</p>
      ) : (
        <>
          <p class="muted" data-testid="patients-shown" role="status">
            {p.showing(data.length, page.total)}
          </p>
          <div class="scroll">
            <table data-testid="patients">
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
                  <tr key={pt.id} data-patient={pt.id}>
                    <td>
                      {pt.givenName} {pt.familyName}
                    </td>
                    <td>{pt.nationalId}</td>
                    <td>{pt.birthDate}</td>
                    <td>
                      <div class="buttons">
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
                        <button
                          type="button"
                          disabled={busy}
                          aria-label={`${p.edit}: ${pt.givenName} ${pt.familyName}`}
                          onClick={() => setEditing(pt.id)}
                        >
                          {p.edit}
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {data.length < page.total ? (
            <div class="buttons">
              <button type="button" onClick={() => setShown((n) => n + PATIENTS_PAGE)}>
                {p.showMore}
              </button>
            </div>
          ) : null}
        </>
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
  const [search, setSearch] = useState('');
  const { data } = usePatientSearch(search, PATIENTS_PAGE);
  // The patient chosen stays listed when a new search no longer matches them.
  const chosen = usePatientBook().get(value);
  const listed = data?.items ?? [];
  const patients = chosen === undefined || listed.some((p) => p.id === value) ? listed : [chosen, ...listed];
  return (
    <>
      <InputField
        label={t.patients.search}
        name="patientSearch"
        autoComplete="off"
        value={search}
        onValue={setSearch}
        {...(data !== undefined && data.items.length < data.total
          ? { hint: t.vaccinate.narrow(data.items.length, data.total) }
          : {})}
      />
      <SelectField
        label={t.vaccinate.patient}
        name="patientId"
        required
        value={value}
        onValue={onChange}
        options={[
          { value: '', label: t.vaccinate.choose },
          ...patients.map((p) => ({
            value: p.id,
            label: `${p.givenName} ${p.familyName} (${p.nationalId})`,
          })),
        ]}
      />
    </>
  );
}

function AntigenSelect({ value, onChange }: { value: string; onChange: (v: string) => void }): JSX.Element {
  const { t } = useContext(AppContext);
  return (
    <SelectField
      label={t.vaccinate.antigen}
      name="antigen"
      value={value}
      onValue={onChange}
      options={ANTIGENS.map((a) => ({ value: a, label: a }))}
    />
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
        <InputField
          label={v.dose}
          name="dose"
          type="number"
          min={1}
          max={10}
          required
          value={dose}
          onValue={setDose}
        />
        <InputField label={v.lot} name="lot" list="lots" required value={lot} onValue={setLot}>
          <datalist id="lots">
            {lots.map((l) => (
              <option key={l.lot} value={l.lot}>
                {`${l.lot} (${l.balance})`}
              </option>
            ))}
          </datalist>
        </InputField>
        <InputField label={v.date} name="date" type="date" required value={date} onValue={setDate} />
        <button type="submit" disabled={busy}>
          {v.record}
        </button>
      </form>
    </>
  );
}

/** The lots and their balances (Stock and Adjust stock). */
function LotsTable({ lots }: { lots: readonly Lot[] }): JSX.Element {
  const { t } = useContext(AppContext);
  const s = t.stock;
  return (
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
          {lots.map((l) => (
            <tr key={l.lot} data-lot={l.lot}>
              <td>{l.lot}</td>
              <td>{l.antigen}</td>
              <td>{l.expiry}</td>
              <td data-testid="balance">{l.balance}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
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
        <InputField label={s.lot} name="lot" required value={lot} onValue={setLot} />
        <AntigenSelect value={antigen} onChange={setAntigen} />
        <InputField
          label={s.quantity}
          name="quantity"
          type="number"
          min={1}
          required
          value={quantity}
          onValue={setQuantity}
        />
        <InputField label={s.expiry} name="expiry" type="date" required value={expiry} onValue={setExpiry} />
        <button type="submit" disabled={busy}>
          {s.receive}
        </button>
      </form>
      <p>
        <a href="#/adjust">{t.adjust.title}</a>
      </p>
      <h2>{s.lots}</h2>
      {data === undefined ? (
        <Loading error={error} />
      ) : data.lots.length === 0 ? (
        <p>{s.empty}</p>
      ) : (
        <LotsTable lots={data.lots} />
      )}
    </>
  );
}

/** Corrects a lot's balance: one `StockAdjusted` with a signed delta and a reason. */
function AdjustScreen(): JSX.Element {
  const { t } = useContext(AppContext);
  const a = t.adjust;
  const { data, error } = useLoad<{ lots: Lot[] }>('/api/stock');
  const { run, busy, message } = useAction();
  const [lot, setLot] = useState('');
  const [direction, setDirection] = useState<'remove' | 'add'>('remove');
  const [doses, setDoses] = useState('1');
  const [reason, setReason] = useState('count');
  const [note, setNote] = useState('');
  if (data === undefined) return <Loading error={error} />;
  const chosen = data.lots.find((l) => l.lot === lot);
  const { delta, after } = stockCorrection(chosen?.balance, direction, doses);
  const words = a.reasons[reason] ?? reason;
  return (
    <>
      <h1>{a.title}</h1>
      <p>{a.intro}</p>
      {message}
      {data.lots.length === 0 ? (
        <p>{a.empty}</p>
      ) : (
        <form
          class="form"
          aria-label={a.title}
          onSubmit={(e) => {
            e.preventDefault();
            if (delta === undefined) return;
            run((key) =>
              record(t, key, 'StockAdjusted', {
                lot,
                delta,
                reason: note.trim() === '' ? words : `${words}: ${note.trim()}`,
              }),
            );
          }}
        >
          <SelectField
            label={a.lot}
            name="lot"
            required
            value={lot}
            onValue={setLot}
            options={[
              { value: '', label: a.choose },
              ...data.lots.map((l) => ({ value: l.lot, label: a.lotOption(l.lot, l.antigen, l.balance) })),
            ]}
          />
          <SelectField
            label={a.direction}
            name="direction"
            value={direction}
            onValue={(v) => setDirection(v === 'add' ? 'add' : 'remove')}
            options={[
              { value: 'remove', label: a.remove },
              { value: 'add', label: a.add },
            ]}
          />
          <InputField
            label={a.doses}
            name="doses"
            type="number"
            min={1}
            required
            value={doses}
            onValue={setDoses}
          />
          <SelectField
            label={a.reason}
            name="reason"
            value={reason}
            onValue={setReason}
            options={Object.entries(a.reasons).map(([value, label]) => ({ value, label }))}
          />
          <InputField
            label={a.note}
            name="note"
            hint={a.noteHint}
            maxLength={400}
            value={note}
            onValue={setNote}
          />
          {chosen === undefined || after === undefined ? null : (
            <p data-testid="adjust-preview" class={after < 0 ? 'note bad' : undefined}>
              {a.preview(chosen.lot, chosen.balance, after)} {after < 0 ? a.belowZero : null}
            </p>
          )}
          <button type="submit" disabled={busy || delta === undefined}>
            {a.record}
          </button>
        </form>
      )}
      <h2>{t.stock.lots}</h2>
      {data.lots.length === 0 ? null : <LotsTable lots={data.lots} />}
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
        <InputField
          label={t.vaccinate.dose}
          name="dose"
          type="number"
          min={1}
          max={10}
          required
          value={dose}
          onValue={setDose}
        />
        <InputField label={a.date} name="date" type="date" required value={date} onValue={setDate} />
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
      case 'adjust':
        return <AdjustScreen />;
      case 'integrity':
        return <IntegrityScreen />;
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
