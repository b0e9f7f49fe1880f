<#
.SYNOPSIS
  Installs, updates or removes the agent-kit desktop agent and its logon task on Windows.

.DESCRIPTION
  Run as Administrator (Program Files and the machine-wide task need it), from the folder that
  holds this script, agent-kit-monitor.xml and the one-folder build `agent-kit\` (the CI
  artifact "agent-kit-windows-onedir"):

    .\install.ps1 -Action Install   -Source .\agent-kit
    .\install.ps1 -Action Update    -Source .\agent-kit   # stops the loop, swaps files, restarts it
    .\install.ps1 -Action Uninstall [-Purge]              # -Purge also deletes every user's state

  The task runs agent-kit-monitor.exe (the windowed twin of agent-kit.exe, no console window)
  at every user's logon, as that user. Enrollment is per user: `agent-kit enroll --center URL
  --token TOKEN` once, in the user's session. See docs/packaging.md.
#>
[CmdletBinding()]
param(
  [Parameter(Mandatory = $true)][ValidateSet('Install', 'Update', 'Uninstall')][string]$Action,
  [string]$Source,
  [string]$InstallDir = (Join-Path $env:ProgramFiles 'agent-kit'),
  [switch]$Purge
)
$ErrorActionPreference = 'Stop'
$TaskPath = '\agent-kit\'
$TaskName = 'monitor'
$XmlPath = Join-Path $PSScriptRoot 'agent-kit-monitor.xml'

function Stop-Agent {
  # The task first, then any agent-kit still running from the install folder (other users'
  # sessions too): files in use cannot be replaced or deleted.
  $task = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
  if ($task) { Stop-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName }
  Get-Process -Name 'agent-kit', 'agent-kit-monitor' -ErrorAction SilentlyContinue |
    Where-Object { $_.Path -and $_.Path.StartsWith($InstallDir, [StringComparison]::OrdinalIgnoreCase) } |
    Stop-Process -Force
}

function Copy-Build {
  if (-not $Source -or -not (Test-Path (Join-Path $Source 'agent-kit.exe'))) {
    throw "-Source must be the one-folder build (a folder holding agent-kit.exe), got '$Source'"
  }
  if (Test-Path $InstallDir) { Remove-Item -Recurse -Force $InstallDir }
  Copy-Item -Recurse -Path $Source -Destination $InstallDir
  & (Join-Path $InstallDir 'agent-kit.exe') --version
  if ($LASTEXITCODE -ne 0) { throw "the installed agent-kit.exe does not start" }
}

function Register-Task {
  $xml = Get-Content -Raw $XmlPath
  $exe = Join-Path $InstallDir 'agent-kit-monitor.exe'
  $xml = $xml -replace '<Command>[^<]*</Command>', "<Command>$([Security.SecurityElement]::Escape($exe))</Command>"
  Register-ScheduledTask -Xml $xml -TaskPath $TaskPath -TaskName $TaskName -Force | Out-Null
}

function Add-ToPath {
  $path = [Environment]::GetEnvironmentVariable('Path', 'Machine')
  if (-not ($path -split ';' | Where-Object { $_ -eq $InstallDir })) {
    [Environment]::SetEnvironmentVariable('Path', "$path;$InstallDir", 'Machine')
  }
}

function Remove-FromPath {
  $path = [Environment]::GetEnvironmentVariable('Path', 'Machine')
  $kept = ($path -split ';' | Where-Object { $_ -and $_ -ne $InstallDir }) -join ';'
  [Environment]::SetEnvironmentVariable('Path', $kept, 'Machine')
}

switch ($Action) {
  'Install' {
    Stop-Agent
    Copy-Build
    Register-Task
    Add-ToPath
    # Starts it now for the user running the installer; other users get it at their next logon.
    Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    Write-Host "agent-kit installed in $InstallDir; the monitor starts at every logon."
  }
  'Update' {
    Stop-Agent
    Copy-Build
    Register-Task
    Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    Write-Host "agent-kit updated in $InstallDir (enrollment and heartbeat spool are kept)."
  }
  'Uninstall' {
    Stop-Agent
    Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Confirm:$false -ErrorAction SilentlyContinue
    if (Test-Path $InstallDir) { Remove-Item -Recurse -Force $InstallDir }
    Remove-FromPath
    if ($Purge) {
      # Per-user state: %LOCALAPPDATA%\agent-kit (enrollment, spool, gate state) of every profile.
      Get-ChildItem 'C:\Users' -Directory | ForEach-Object {
        $state = Join-Path $_.FullName 'AppData\Local\agent-kit'
        if (Test-Path $state) { Remove-Item -Recurse -Force $state }
      }
    }
    Write-Host 'agent-kit removed.'
  }
}
