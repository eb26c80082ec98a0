export interface CurveSeries {
  name: string
  points: Array<[number, number | null]>
}
export interface CurveChart {
  title: string
  x: string
  y: string
  series: CurveSeries[]
}
export interface Axis {
  log: boolean
  min: number
  max: number
  ticks: number[]
  at(value: number): number
}
export function formatTick(value: number): string
export function axis(values: number[], options?: { forceLinear?: boolean }): Axis
export function renderCurves(charts: CurveChart[], options?: { columns?: number; width?: number; height?: number; title?: string }): string
