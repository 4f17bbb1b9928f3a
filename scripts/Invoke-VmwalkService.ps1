<#
.SYNOPSIS
Installs, starts, stops and removes the vmwalk kernel service with sc.exe, or
runs the whole cycle.

.DESCRIPTION
Actions (each idempotent, each reports the service state):
  Status   service state, image path, test signing, Debug Print Filter
  Install  sc.exe create vmwalk type= kernel start= demand binPath= <vmwalk.sys>
  Start    sc.exe start vmwalk (runs DriverEntry)
  Stop     sc.exe stop vmwalk (runs DriverUnload)
  Remove   stops if needed, then sc.exe delete vmwalk
  Cycle    Install, DebugView (if Dbgview64.exe or Dbgview.exe is on PATH), Start, wait
           -HoldSeconds, Stop, Remove. Stop and Remove run even if Start fails.

.PARAMETER PackagePath
Folder with vmwalk.sys (cargo make's target\<profile>\vmwalk_package).
Default: searched next to scripts\.

.PARAMETER DriverPath
The .sys file itself; overrides -PackagePath.

.PARAMETER LogPath
DebugView log file for Cycle.

.PARAMETER HoldSeconds
How long Cycle keeps the driver loaded (inspect it in WinDbg meanwhile).

.PARAMETER NoDebugView
Cycle without starting DebugView.

.PARAMETER MappingMethod
With Install or Cycle: writes Parameters\MappingMethod after the service is
created. NonPagedPoolMdl runs the design's first sequence (Driver Verifier
stops it; the driver refuses it while verified); Default removes the value.

.PARAMETER Address
With Install or Cycle: hex addresses (WinDbg's forms, at most 16) for
DriverEntry to walk, written to Parameters\Addresses. Bare digits are hex
(140000000 is 0x140000000); several may share one string, separated by
commas. Checked with the driver's rules before anything is written. User
addresses need -ProcessId or -ProcessName. Quote an address with a backtick
('fffff800`12345000'): unquoted, the backtick is PowerShell's escape.

.PARAMETER ProcessId
The process whose address space holds the user addresses (only with -Address).

.PARAMETER ProcessName
The same, by its image file's name (notepad.exe); the driver finds it, and
says so when several processes have that name.

.PARAMETER ClearAddresses
With Install or Cycle: remove Addresses, ProcessId and ProcessName.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\scripts\Invoke-VmwalkService.ps1 Cycle

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\scripts\Invoke-VmwalkService.ps1 Cycle -Address '0x7ff6c0001000,fffff800`12345000' -ProcessName notepad.exe

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\scripts\Invoke-VmwalkService.ps1 Install -PackagePath C:\vmwalk\vmwalk_package -WhatIf
#>
#Requires -Version 5.1
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Status', 'Install', 'Start', 'Stop', 'Remove', 'Cycle')]
    [string]$Action = 'Status',
    [string]$PackagePath,
    [string]$DriverPath,
    [string]$LogPath = (Join-Path $env:TEMP 'vmwalk-debugview.log'),
    [ValidateRange(0, 3600)]
    [int]$HoldSeconds = 5,
    [switch]$NoDebugView,
    [ValidateSet('Default', 'PartialMdl', 'NonPagedPoolMdl')]
    [string]$MappingMethod,
    [string[]]$Address,
    [int]$ProcessId,
    [string]$ProcessName,
    [switch]$ClearAddresses
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Import-Module -Name (Join-Path $PSScriptRoot 'VmwalkTools.psm1') -Force

function Get-DriverFile {
    if ($DriverPath) { return (Resolve-Path -LiteralPath $DriverPath).ProviderPath }
    Join-Path (Resolve-VmwalkPackage -PackagePath $PackagePath) 'vmwalk.sys'
}

function Show-Status {
    Write-Host "Service vmwalk: $(Get-VmwalkServiceState)"
    $image = Get-VmwalkImagePath
    if ($image) { Write-Host "Image path: $image" }
    Write-Host "Test signing active in this boot: $(Test-TestSigningActive)"
    $mask = Get-VmwalkDebugPrintMask
    if ($null -eq $mask) {
        Write-Host 'Debug Print Filter IHVDRIVER: not set (info-level lines hidden; run Initialize-TestMachine.ps1).'
    } else {
        Write-Host ('Debug Print Filter IHVDRIVER: 0x{0:X}' -f $mask)
    }
}

if ($Action -eq 'Status') {
    Show-Status
    return
}

# Refused before anything is written: what the driver would refuse, and a
# process named for no address.
$Address = ConvertTo-VmwalkAddress -Address $Address
if ($Address.Count -eq 0 -and ($ProcessId -or $ProcessName)) {
    throw '-ProcessId and -ProcessName name the process of -Address''s user addresses: give -Address too.'
}

Assert-Administrator
$whatIf = [bool]$WhatIfPreference

# Parameters\ values for the next DriverEntry, written after Install (Remove deletes them).
function Set-Parameters {
    if ($MappingMethod) { Set-VmwalkMappingMethod -Method $MappingMethod -WhatIf:$whatIf }
    if ($ClearAddresses) { Set-VmwalkNamedAddresses -Clear -WhatIf:$whatIf }
    if ($Address.Count -gt 0) {
        Set-VmwalkNamedAddresses -Address $Address -ProcessId $ProcessId -ProcessName $ProcessName -WhatIf:$whatIf
    }
}

switch ($Action) {
    'Install' {
        Install-VmwalkService -DriverPath (Get-DriverFile) -WhatIf:$whatIf
        Set-Parameters
    }
    'Start' { Start-VmwalkService -WhatIf:$whatIf }
    'Stop' { Stop-VmwalkService -WhatIf:$whatIf }
    'Remove' { Remove-VmwalkService -WhatIf:$whatIf }
    'Cycle' {
        Install-VmwalkService -DriverPath (Get-DriverFile) -WhatIf:$whatIf
        Set-Parameters
        $debugView = $null
        if (-not $NoDebugView) {
            $debugView = Start-VmwalkDebugView -LogPath $LogPath -WhatIf:$whatIf
        }
        $failure = $null
        try {
            Start-VmwalkService -WhatIf:$whatIf
            if (-not $whatIf -and $HoldSeconds -gt 0) {
                Write-Host "vmwalk is loaded; unloading in $HoldSeconds s (inspect it in WinDbg meanwhile)."
                Start-Sleep -Seconds $HoldSeconds
            }
        } catch {
            $failure = $_
        } finally {
            # Runs after a failed start too, so the VM is left clean.
            Stop-VmwalkService -WhatIf:$whatIf
            Remove-VmwalkService -WhatIf:$whatIf
        }
        if ($null -ne $debugView) {
            Start-Sleep -Seconds 1
            $lines = @(Select-String -LiteralPath $LogPath -Pattern 'vmwalk:' -ErrorAction SilentlyContinue)
            if ($lines.Count -gt 0) {
                Write-Host "vmwalk lines in ${LogPath}:"
                $lines | ForEach-Object { Write-Host $_.Line }
            } else {
                Write-Host "No vmwalk: lines in $LogPath yet (DebugView may still buffer them): look at its window."
            }
            Write-Host "DebugView (pid $($debugView.Id)) keeps running; close it when done."
        }
        if ($null -ne $failure) { throw $failure }
    }
}
