// A small typed client for the gateway. Every call carries the API key; errors carry the
// gateway's own message (it always says what to fix) and the HTTP status.

import type * as T from './api-types'

// The API's shapes come from the gateway's OpenAPI document (api-types.ts, generated).
export type PlanStatus = T.PlanStatus
export type Artifact = T.SageMakerDeploymentConfig
export type Evidence = T.Evidence
export type Finding = T.Finding
export type SageMakerCall = T.SageMakerCall
export type Plan = T.DeploymentPlan
export type PlanDetails = T.PlanDetails
export type PlanDetail = T.DeploymentDetail
export type CommandResponse = T.CommandResponse
export type Approval = T.Approval
export type HistoryEvent = T.HistoryEvent
export type Me = T.Me
export type MonthlyCost = T.MonthlyCost
export type PlanCost = T.PlanCost
export type DeploymentList = T.DeploymentList
export type Action = T.Action
export type BudgetView = T.BudgetView
export type ScheduleView = T.ScheduleView
export type ScheduleRequest = T.ScheduleRequest

export interface Ready {
  status: 'ready' | 'not_ready'
  broker: string
  database: string
  executor_mode: string
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
  deployments = () => this.request<DeploymentList>('GET', '/api/deployments?limit=200')
  deployment = (id: string) => this.request<PlanDetail>('GET', `/api/deployments/${encodeURIComponent(id)}`)
  history = (id: string) => this.request<HistoryEvent[]>('GET', `/api/deployments/${encodeURIComponent(id)}/history`)
  cost = (id: string) => this.request<PlanCost>('GET', `/api/deployments/${encodeURIComponent(id)}/cost`)
  active = () => this.request<T.ActiveDeployments>('GET', '/api/metrics/deployments/active')
  pending = () => this.request<T.PendingApprovals>('GET', '/api/metrics/approvals/pending')
  monthly = () => this.request<MonthlyCost>('GET', '/api/metrics/costs/monthly')
  approvals = () => this.request<Approval[]>('GET', '/approvals')
  budgets = () => this.request<BudgetView[]>('GET', '/api/budgets')
  schedules = () => this.request<ScheduleView[]>('GET', '/api/schedules')
  schedule = (id: string) => this.request<ScheduleView>('GET', `/api/deployments/${encodeURIComponent(id)}/schedule`)
  setSchedule = (id: string, body: ScheduleRequest) =>
    this.request<T.ScheduleChanged>('PUT', `/api/deployments/${encodeURIComponent(id)}/schedule`, body)
  removeSchedule = (id: string) => this.request<T.ScheduleChanged>('DELETE', `/api/deployments/${encodeURIComponent(id)}/schedule`)
  command = (command: string, env: string) =>
    this.request<CommandResponse>('POST', '/api/agent/command', { command, env })
  pause = (id: string) => this.request<T.ActionResponse>('POST', `/api/deployments/${encodeURIComponent(id)}/pause`)
  restart = (id: string) => this.request<T.ActionResponse>('POST', `/api/deployments/${encodeURIComponent(id)}/restart`)
  remove = (id: string) => this.request<T.ActionResponse>('DELETE', `/api/deployments/${encodeURIComponent(id)}`)
  decide = (id: string, decision: 'approve' | 'reject', reason: string, planHash: string) =>
    this.request<T.ApproveResponse>('POST', `/approvals/${encodeURIComponent(id)}/${decision}`, { reason, plan_hash: planHash })
}
