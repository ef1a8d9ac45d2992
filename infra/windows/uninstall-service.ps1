<#
.SYNOPSIS
  Stops and removes the "trellisd" service (run as an Administrator); the state directory stays.

.DESCRIPTION
  Stopping lets trellisd take its routes, addresses and NRPT rules away. If it had crashed, the
  routes went with its adapter, but NRPT rules stay: those marked as trellisd's are removed here.
#>
[CmdletBinding()]
param(
  [string]$InstallDir
)
$ErrorActionPreference = 'Stop'
$ServiceName = 'trellisd'

if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
  & sc.exe stop $ServiceName | Out-Null
  (Get-Service -Name $ServiceName).WaitForStatus('Stopped', [TimeSpan]::FromSeconds(40))
  & sc.exe delete $ServiceName
  if ($LASTEXITCODE -ne 0) { throw "sc.exe delete failed ($LASTEXITCODE)" }
}

# The comment marks trellisd's rules (apps/agent/src/platform/resolver-windows.ts, NRPT_COMMENT).
Get-DnsClientNrptRule -ErrorAction SilentlyContinue |
  Where-Object { $_.Comment -eq 'Trellis mesh DNS (managed by trellisd)' } |
  ForEach-Object { Remove-DnsClientNrptRule -Name $_.Name -Force }
Clear-DnsClientCache

if ($InstallDir) {
  Remove-Item -LiteralPath (Join-Path $InstallDir 'trellisd-service.exe') -Force -ErrorAction SilentlyContinue
  Remove-Item -LiteralPath (Join-Path $InstallDir 'trellisd-service.xml') -Force -ErrorAction SilentlyContinue
}
Write-Host 'trellisd removed'
