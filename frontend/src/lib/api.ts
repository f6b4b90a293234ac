// A small typed client for the gateway. Every call carries the API key; errors carry the
// gateway's own message (it always says what to fix) and the HTTP status.

export type PlanStatus =
  | 'planning'
  | 'validation_failed'
  | 'pending_approval'
  | 'rejected'
  | 'deploying'
  | 'deployed'
  | 'failed'
  | 'paused'
  | 'deleted'

export interface Artifact {
  model_name: string
  endpoint_name: string
  instance_type: string
  instance_count: number
  budget_usd_per_hour: number
  rollback_alarms?: string[]
}

export interface Evidence {
  title: string
  snippet: string
  url?: string | null
  score?: number | null
}

export interface Plan {
  plan_id: string
  status: PlanStatus
  user_id: string
  intent: string
  env: string
  artifact: Artifact | null
  evidence: Evidence[]
  created_at: string
  updated_at: string
  validation_errors: string[]
  cost_usd?: number | null
}

export interface Finding {
  code: string
  message: string
  severity?: string
  field?: string
}

export interface SageMakerCall {
  service?: string
  operation: string
  params?: Record<string, unknown>
}

export interface PlanDetails {
  mode?: string
  planner?: string
  model_id?: string
  assumptions?: string[]
  findings?: Finding[]
  sagemaker_calls?: SageMakerCall[]
  estimated_usd_per_hour?: number
  error?: string
  [key: string]: unknown
}

export interface PlanDetail {
  plan: Plan & { details: PlanDetails }
  approval: Record<string, unknown> | null
}

export interface CommandResponse {
  command_id: string
  status: 'success' | 'validation_failed' | 'accepted'
  result: {
    plan_id: string
    status: string
    artifact: Artifact | null
    requires_approval: boolean
    errors: string[]
  } | null
  error: string | null
  plan_id: string
  message: string
  requires_approval: boolean
  action: string | null
  validation_errors: string[]
}

export interface Approval {
  plan_id: string
  intent: string
  env: string
  requested_by: string
  requested_at: string
  expires_at: string
  estimated_usd_per_hour: number
  artifact: Artifact
  warnings: Finding[]
  evidence: Evidence[]
  plan_hash: string
  approvals_required: number
  approvers: string[]
}

export interface HistoryEvent {
  seq: number
  event_id: string
  type: string
  plan_id: string | null
  actor: string
  occurred_at: string
  hash: string
  data: Record<string, unknown>
}

export interface Me {
  user_id: string
  roles: string[]
  key_id: string
}

export interface Ready {
  status: 'ready' | 'not_ready'
  broker: string
  database: string
  executor_mode: string
}

export interface MonthlyCost {
  amount: number
  currency: string
  trend: 'up' | 'down' | 'stable'
  percent_change: number
  estimated: boolean
  basis: string
}

export interface PlanCost {
  usd: number
  month_to_date_usd: number
  usd_per_hour: number
  running: boolean
  estimated: boolean
  basis: string
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errors: string[] = [],
  ) {
    super(message)
    this.name = 'ApiError'
  }
  get network(): boolean {
    return this.status === 0
  }
}

/** The gateway's error body is `{detail: string}` or FastAPI's list of field errors. */
export function errorMessage(status: number, body: unknown): { message: string; errors: string[] } {
  const detail = (body as { detail?: unknown } | null)?.detail
  if (typeof detail === 'string') return { message: detail, errors: [] }
  if (Array.isArray(detail)) {
    const errors = detail.map((d: { loc?: unknown[]; msg?: string }) => {
      const field = (d.loc ?? []).filter((p) => p !== 'body').join('.')
      return field ? `${field}: ${d.msg}` : String(d.msg)
    })
    return { message: errors.join('; ') || `request refused (${status})`, errors }
  }
  return { message: `the gateway answered ${status}`, errors: [] }
}

export class Api {
  constructor(
    private readonly key: () => string | null,
    private readonly base = '',
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' }
    const key = this.key()
    if (key) headers['X-API-Key'] = key
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let response: Response
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch {
      throw new ApiError('cannot reach the AgentOps gateway: check that it is running and your network', 0)
    }
    const text = await response.text()
    let parsed: unknown = null
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      parsed = null
    }
    if (!response.ok) {
      const { message, errors } = errorMessage(response.status, parsed)
      throw new ApiError(message, response.status, errors)
    }
    return parsed as T
  }

  me = () => this.request<Me>('GET', '/api/me')
  /** /readyz answers 503 with the same body when something is down: both are an answer here. */
  async ready(): Promise<Ready> {
    try {
      const response = await fetch(this.base + '/readyz', { headers: { Accept: 'application/json' } })
      return (await response.json()) as Ready
    } catch {
      throw new ApiError('cannot reach the AgentOps gateway', 0)
    }
  }
  deployments = () => this.request<{ deployments: Plan[]; count: number }>('GET', '/api/deployments?limit=200')
  deployment = (id: string) => this.request<PlanDetail>('GET', `/api/deployments/${encodeURIComponent(id)}`)
  history = (id: string) => this.request<HistoryEvent[]>('GET', `/api/deployments/${encodeURIComponent(id)}/history`)
  cost = (id: string) => this.request<PlanCost>('GET', `/api/deployments/${encodeURIComponent(id)}/cost`)
  active = () => this.request<{ count: number }>('GET', '/api/metrics/deployments/active')
  pending = () => this.request<{ count: number }>('GET', '/api/metrics/approvals/pending')
  monthly = () => this.request<MonthlyCost>('GET', '/api/metrics/costs/monthly')
  approvals = () => this.request<Approval[]>('GET', '/approvals')
  command = (command: string, env: string) =>
    this.request<CommandResponse>('POST', '/api/agent/command', { command, env })
  pause = (id: string) => this.request('POST', `/api/deployments/${encodeURIComponent(id)}/pause`)
  restart = (id: string) => this.request('POST', `/api/deployments/${encodeURIComponent(id)}/restart`)
  remove = (id: string) => this.request('DELETE', `/api/deployments/${encodeURIComponent(id)}`)
  decide = (id: string, decision: 'approve' | 'reject', reason: string, planHash: string) =>
    this.request('POST', `/approvals/${encodeURIComponent(id)}/${decision}`, { reason, plan_hash: planHash })
}
