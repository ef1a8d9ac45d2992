<#
.SYNOPSIS
  Installs trellisd as the Windows service "trellisd" (run as an Administrator).

.DESCRIPTION
  The service control manager wants a program that answers it within 30 s, which node.exe does
  not: the service runs WinSW (https://github.com/winsw/winsw, v2.12, one .exe, MIT), copied in as
  trellisd-service.exe, which starts node with the daemon and stops it with Ctrl+C (trellisd then
  tears the mesh down, as on SIGINT). WinSW reads trellisd-service.xml next to it, written here.

  The state directory is made Administrators' and readable by SYSTEM and Administrators only (one
  someone else made first is refused); trellisd itself locks it again at every start, and makes
  the control pipe's key directory below it readable by the signed-in user too.

.EXAMPLE
  .\install-service.ps1 -InstallDir 'C:\Program Files\Trellis' -WinSW .\WinSW-x64.exe
#>
[CmdletBinding()]
param(
  # Where the built repo is (apps\agent\dist\daemon.js under it).
  [Parameter(Mandatory = $true)][string]$InstallDir,
  # The WinSW executable to copy in as the service wrapper.
  [Parameter(Mandatory = $true)][string]$WinSW,
  [string]$StateDir = (Join-Path $env:ProgramData 'Trellis'),
  [string]$Node = (Get-Command node.exe -ErrorAction Stop).Source,
  # More trellisd flags, e.g. '--dns auto'.
  [string[]]$DaemonArgs = @()
)
$ErrorActionPreference = 'Stop'

$ServiceName = 'trellisd'
$Daemon = Join-Path $InstallDir 'apps\agent\dist\daemon.js'
$Wrapper = Join-Path $InstallDir 'trellisd-service.exe'
$WrapperXml = Join-Path $InstallDir 'trellisd-service.xml'
if (-not (Test-Path -LiteralPath $Daemon)) { throw "no ${Daemon}: build the repo first (pnpm build)" }
if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) { throw "service $ServiceName exists: run uninstall-service.ps1 first" }

# A directory someone else made first keeps its owner's rights (and what they granted, to files in
# it too) through any ACL change: refused unless SYSTEM, Administrators or this installer made it.
$trusted = @('S-1-5-18', 'S-1-5-32-544', [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value)
if (Test-Path -LiteralPath $StateDir) {
  $owner = (Get-Acl -LiteralPath $StateDir).GetOwner([System.Security.Principal.SecurityIdentifier]).Value
  if ($trusted -notcontains $owner) { throw "$StateDir belongs to $owner, not to an Administrator: remove it and run this again" }
}
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
# Owner Administrators first, then SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) only,
# nothing inherited from ProgramData (where Users may read).
& icacls.exe $StateDir /setowner '*S-1-5-32-544'
if ($LASTEXITCODE -ne 0) { throw "icacls $StateDir /setowner failed ($LASTEXITCODE)" }
& icacls.exe $StateDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F'
if ($LASTEXITCODE -ne 0) { throw "icacls $StateDir failed ($LASTEXITCODE)" }

Copy-Item -LiteralPath $WinSW -Destination $Wrapper -Force
$esc = [System.Security.SecurityElement]
$arguments = @("`"$Daemon`"", '--state-dir', "`"$StateDir`"") + $DaemonArgs
$xml = @"
<service>
  <id>$ServiceName</id>
  <name>Trellis agent</name>
  <description>Trellis mesh VPN agent (trellisd)</description>
  <executable>$($esc::Escape($Node))</executable>
  <arguments>$($esc::Escape($arguments -join ' '))</arguments>
  <stoptimeout>30 sec</stoptimeout>
  <logpath>$($esc::Escape((Join-Path $StateDir 'logs')))</logpath>
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>
</service>
"@
Set-Content -LiteralPath $WrapperXml -Value $xml -Encoding UTF8

# The path quoted inside the value, or with a space in it Windows would start C:\Program.exe
# first (CWE-428). New-Service hands the value to CreateService as it is; `sc.exe create binPath=`
# would not: Windows PowerShell passes "`"$Wrapper`"" to it unescaped, and sc.exe's command line
# parsing takes the quotes away. No -Credential: the service runs as LocalSystem.
$BinaryPath = '"{0}"' -f $Wrapper
New-Service -Name $ServiceName -BinaryPathName $BinaryPath -DisplayName 'Trellis agent' -StartupType Automatic -Description 'Trellis mesh VPN agent: WireGuard (wireguard-nt), routes, split DNS (NRPT) and the control pipe \\.\pipe\trellisd' | Out-Null
# The space after each `name=` is sc.exe's syntax, not a typo.
# Restarted 5 s after a crash (twice), then after 30 s; the count resets after a day.
& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/30000
# Also when it exits with an error code, not only when it is killed.
& sc.exe failureflag $ServiceName 1
& sc.exe start $ServiceName
if ($LASTEXITCODE -ne 0) { throw "sc.exe start failed ($LASTEXITCODE)" }
Write-Host "trellisd installed and started; state in $StateDir, logs in $(Join-Path $StateDir 'logs')"
