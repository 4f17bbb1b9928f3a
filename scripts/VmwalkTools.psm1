# Shared helpers for the vmwalk test-VM scripts (Initialize-TestMachine.ps1,
# Invoke-VmwalkService.ps1). Windows PowerShell 5.1 compatible; ASCII only,
# because 5.1 reads BOM-less files as ANSI.
#
# Preference variables do not flow from a script into a module's functions,
# so the scripts pass -WhatIf:$WhatIfPreference explicitly.

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$script:DefaultServiceName = 'vmwalk'

# sc.exe exits with the Win32 error code of the call that failed. For a kernel
# service, a failing DriverEntry's NTSTATUS reaches us converted by
# RtlNtStatusToDosError:
# https://learn.microsoft.com/en-us/windows/win32/api/winternl/nf-winternl-rtlntstatustodoserror
# NTSTATUS values: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-erref/596a1078-e883-4972-9bbc-49e60bebca55
$script:ErrorHints = @{
    2    = 'Likely NTSTATUS: STATUS_OBJECT_NAME_NOT_FOUND (0xC0000034). The service binPath does not point to an existing vmwalk.sys (moved or deleted?): run Remove, then Install.'
    5    = 'Likely NTSTATUS: STATUS_ACCESS_DENIED (0xC0000022). Run elevated; if you are, DriverEntry or a security product (antivirus, WDAC, HVCI) refused the load: check DebugView and the Microsoft-Windows-CodeIntegrity/Operational event log.'
    31   = 'Likely NTSTATUS: STATUS_UNSUCCESSFUL (0xC0000001). DriverEntry failed: the "vmwalk:" error line in DebugView names the call.'
    87   = 'Likely NTSTATUS: STATUS_INVALID_PARAMETER (0xC000000D). DriverEntry failed: the "vmwalk:" error line in DebugView names the call.'
    127  = 'Likely NTSTATUS: STATUS_PROCEDURE_NOT_FOUND (0xC000007A) or STATUS_DRIVER_ENTRYPOINT_NOT_FOUND (0xC0000263). ntoskrnl.exe lacks an import of vmwalk.sys: ExAllocatePool2 needs Windows 10 version 2004 or later.'
    193  = 'Likely NTSTATUS: STATUS_INVALID_IMAGE_FORMAT (0xC000007B). Wrong architecture (ARM64 build on x64 or the reverse) or a damaged file.'
    577  = 'NTSTATUS: STATUS_INVALID_IMAGE_HASH (0xC0000428). Windows rejected the signature: test signing is off or not active yet (run Initialize-TestMachine.ps1 and reboot; Secure Boot must be off), or vmwalk.sys is unsigned (a Linux build is; load the cargo make package).'
    1058 = 'The service is disabled: sc.exe config vmwalk start= demand, or run Remove then Install.'
    1060 = 'The service is not installed: run Install first.'
    1072 = 'ERROR_SERVICE_MARKED_FOR_DELETE: a program still holds a handle to the service (services.msc, Event Viewer, Process Explorer) or the driver is still loaded. Close them and retry; if it persists, reboot.'
    1073 = 'ERROR_SERVICE_EXISTS: a service with this name already exists: run Remove first (or pnputil /delete-driver oemNN.inf /uninstall if pnputil installed it).'
    1275 = 'Likely NTSTATUS: STATUS_DRIVER_BLOCKED (0xC000036C). Blocked by policy (vulnerable driver blocklist, WDAC, HVCI): see the Microsoft-Windows-CodeIntegrity/Operational event log.'
    1359 = 'Likely NTSTATUS: STATUS_INTERNAL_ERROR (0xC00000E5). The alias proof failed (two addresses, two PTEs, one frame): the "vmwalk:" error line in DebugView says which check.'
    1450 = 'Likely NTSTATUS: STATUS_INSUFFICIENT_RESOURCES (0xC000009A). An allocation in DriverEntry failed: the "vmwalk:" error line in DebugView names the call.'
}

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object -TypeName Security.Principal.WindowsPrincipal -ArgumentList $identity
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'This script changes boot, certificate and service settings and must run as Administrator. Right-click Windows PowerShell, choose "Run as administrator", and run it again.'
    }
}

function Get-Win32ErrorText {
    param([Parameter(Mandatory = $true)][int]$Code)
    (New-Object -TypeName ComponentModel.Win32Exception -ArgumentList $Code).Message
}

# Runs a console program and returns its exit code and combined output. Local
# 'Continue' because 5.1 turns redirected stderr lines into terminating errors
# under 'Stop'.
function Invoke-Native {
    param(
        [Parameter(Mandatory = $true)][string]$FilePath,
        [string[]]$ArgumentList = @()
    )
    $ErrorActionPreference = 'Continue'
    $lines = & $FilePath @ArgumentList 2>&1 | ForEach-Object { "$_" }
    [pscustomobject]@{
        ExitCode = $LASTEXITCODE
        Output   = (@($lines) -join [Environment]::NewLine).Trim()
    }
}

function Format-NativeFailure {
    param(
        [Parameter(Mandatory = $true)][string]$Command,
        [Parameter(Mandatory = $true)]$Result
    )
    $code = [int]$Result.ExitCode
    $message = "$Command failed with Win32 error $code ($(Get-Win32ErrorText -Code $code))."
    if ($script:ErrorHints.ContainsKey($code)) {
        $message += ' ' + $script:ErrorHints[$code]
    }
    if ($Result.Output) {
        $message += [Environment]::NewLine + $Result.Output
    }
    $message
}

# Folder with vmwalk.sys: the given path, the current folder, <repo>\vmwalk_package
# (copied next to scripts\), or the newest cargo make output
# target\[<triple>\]<profile>\vmwalk_package (wdk-build's package folder).
function Resolve-VmwalkPackage {
    param([string]$PackagePath)
    if ($PackagePath) {
        $full = (Resolve-Path -LiteralPath $PackagePath).ProviderPath
        if (-not (Test-Path -LiteralPath (Join-Path $full 'vmwalk.sys'))) {
            throw "No vmwalk.sys in '$full'. Pass the folder that cargo make wrote (target\debug\vmwalk_package)."
        }
        return $full
    }
    $root = Split-Path -Parent $PSScriptRoot
    $patterns = @(
        (Get-Location).ProviderPath,
        (Join-Path $root 'vmwalk_package'),
        (Join-Path $root 'target\*\vmwalk_package'),
        (Join-Path $root 'target\*\*\vmwalk_package')
    )
    $found = @(Get-Item -Path $patterns -ErrorAction SilentlyContinue |
        Where-Object { $_.PSIsContainer -and (Test-Path -LiteralPath (Join-Path $_.FullName 'vmwalk.sys')) } |
        Sort-Object -Property LastWriteTime -Descending)
    if ($found.Count -eq 0) {
        throw "vmwalk.sys not found. Build with 'cargo make' and pass -PackagePath <folder with vmwalk.sys, e.g. target\debug\vmwalk_package>."
    }
    $found[0].FullName
}

# ---------------------------------------------------------------- test signing

function Get-SecureBootState {
    # Confirm-SecureBootUEFI: https://learn.microsoft.com/en-us/powershell/module/secureboot/confirm-securebootuefi
    try {
        if (Confirm-SecureBootUEFI) { 'On' } else { 'Off' }
    } catch [System.PlatformNotSupportedException] {
        'NotUefi'
    } catch {
        "Unknown ($($_.Exception.Message))"
    }
}

# True when the running system was booted with test signing (the loader
# records its boot options in SystemStartOptions).
function Test-TestSigningActive {
    $options = (Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control' -Name 'SystemStartOptions').SystemStartOptions
    [bool]($options -match '\bTESTSIGNING\b')
}

# Returns $true when a reboot is needed.
function Enable-VmwalkTestSigning {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param()
    $secureBoot = Get-SecureBootState
    Write-Host "Secure Boot: $secureBoot"
    if ($secureBoot -eq 'On') {
        throw ('Secure Boot is on, and Windows then refuses test signing ("The value is protected by Secure Boot policy"). ' +
            'Turn Secure Boot off in the VM firmware and boot again: Hyper-V host: Set-VMFirmware -VMName <vm> -EnableSecureBoot Off ' +
            '(VM switched off; https://learn.microsoft.com/en-us/powershell/module/hyper-v/set-vmfirmware); VMware: VM Options > Advanced > Secure Boot; ' +
            'QEMU/OVMF: a firmware build without secure boot. Suspend BitLocker first if it is on.')
    }
    $active = Test-TestSigningActive
    # bcdedit /set testsigning on: https://learn.microsoft.com/en-us/windows-hardware/drivers/install/the-testsigning-boot-configuration-option
    # Setting it again is harmless, so this stays idempotent.
    if ($PSCmdlet.ShouldProcess('boot configuration {current}', 'bcdedit /set testsigning on')) {
        $result = Invoke-Native -FilePath 'bcdedit.exe' -ArgumentList @('/set', 'testsigning', 'on')
        if ($result.ExitCode -ne 0) {
            throw "bcdedit /set testsigning on failed (exit $($result.ExitCode)): $($result.Output)"
        }
        Write-Host 'Test signing is set in the boot configuration.'
    }
    if ($active) {
        Write-Host 'Test signing is active in this boot ("Test Mode" watermark).'
        return $false
    }
    Write-Host 'Test signing takes effect after a reboot.'
    $true
}

# ---------------------------------------------------------------- certificate

# Trusts the test certificate that cargo make wrote (WDRLocalTestCert.cer) in
# LocalMachine Root and TrustedPublisher. With test signing on, the kernel
# loads any test-signed driver; the trust lets signtool verify and pnputil
# install the package without prompts.
function Add-VmwalkTestCertificate {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$CertificatePath)
    $full = (Resolve-Path -LiteralPath $CertificatePath).ProviderPath
    $cert = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $full
    Write-Host "Certificate: $($cert.Subject), thumbprint $($cert.Thumbprint)"
    foreach ($store in @('Root', 'TrustedPublisher')) {
        $location = "Cert:\LocalMachine\$store"
        $present = @(Get-ChildItem -LiteralPath $location | Where-Object { $_.Thumbprint -eq $cert.Thumbprint })
        if ($present.Count -gt 0) {
            Write-Host "Already trusted in $location."
            continue
        }
        # Import-Certificate: https://learn.microsoft.com/en-us/powershell/module/pki/import-certificate
        if ($PSCmdlet.ShouldProcess($location, "Import-Certificate -FilePath $full")) {
            Import-Certificate -FilePath $full -CertStoreLocation $location | Out-Null
            Write-Host "Imported into $location."
        }
    }
}

# ---------------------------------------------------------------- debug output

$script:DebugPrintFilterKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Debug Print Filter'

function Get-VmwalkDebugPrintMask {
    $item = Get-ItemProperty -LiteralPath $script:DebugPrintFilterKey -Name 'IHVDRIVER' -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    [int]$item.IHVDRIVER
}

# Sets the IHVDRIVER component mask so that DPFLTR_INFO_LEVEL lines (bit 3)
# reach DebugView/WinDbg; 0xF = error, warning, trace, info. Read at boot.
# Returns $true when a reboot is needed.
# Debug Print Filter: https://learn.microsoft.com/en-us/windows-hardware/drivers/devtest/reading-and-filtering-debugging-messages
function Enable-VmwalkDebugPrint {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param()
    $wanted = 0xF
    $current = Get-VmwalkDebugPrintMask
    if ($null -ne $current -and ($current -band $wanted) -eq $wanted) {
        Write-Host ('Debug Print Filter IHVDRIVER is already 0x{0:X} (includes 0xF; in effect if it was set before the last boot).' -f $current)
        return $false
    }
    $value = $wanted
    if ($null -ne $current) { $value = $current -bor $wanted }
    if ($PSCmdlet.ShouldProcess("$script:DebugPrintFilterKey\IHVDRIVER", ('set DWORD 0x{0:X}' -f $value))) {
        if (-not (Test-Path -LiteralPath $script:DebugPrintFilterKey)) {
            New-Item -Path $script:DebugPrintFilterKey -Force | Out-Null
        }
        New-ItemProperty -LiteralPath $script:DebugPrintFilterKey -Name 'IHVDRIVER' -PropertyType DWord -Value $value -Force | Out-Null
        Write-Host ('Debug Print Filter IHVDRIVER = 0x{0:X}; it takes effect after a reboot (WinDbg now: ed nt!Kd_IHVDRIVER_Mask 0xF).' -f $value)
    }
    $true
}

# ---------------------------------------------------------------- service

function Get-VmwalkServiceState {
    param([string]$Name = $script:DefaultServiceName)
    # sc.exe query: https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/sc-query
    $result = Invoke-Native -FilePath 'sc.exe' -ArgumentList @('query', $Name)
    if ($result.ExitCode -eq 1060) { return 'NotInstalled' }
    if ($result.ExitCode -ne 0) {
        throw (Format-NativeFailure -Command "sc.exe query $Name" -Result $result)
    }
    if ($result.Output -match '(?m)^\s*STATE\s*:\s*(\d+)') {
        # SERVICE_STATUS dwCurrentState: https://learn.microsoft.com/en-us/windows/win32/api/winsvc/ns-winsvc-service_status
        switch ([int]$Matches[1]) {
            1 { return 'Stopped' }
            2 { return 'StartPending' }
            3 { return 'StopPending' }
            4 { return 'Running' }
            default { return "State$_" }
        }
    }
    # Fallback should a localized sc.exe word its output differently.
    # Win32_SystemDriver: https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/win32-systemdriver
    $driver = Get-CimInstance -ClassName Win32_SystemDriver -Filter "Name='$Name'"
    if ($null -eq $driver) {
        throw "Unexpected output of sc.exe query ${Name}:$([Environment]::NewLine)$($result.Output)"
    }
    ([string]$driver.State) -replace ' ', ''
}

# ImagePath as the SCM stored it (kernel services get an \??\ prefix).
# https://learn.microsoft.com/en-us/windows-hardware/drivers/install/hklm-system-currentcontrolset-services-registry-tree
function Get-VmwalkImagePath {
    param([string]$Name = $script:DefaultServiceName)
    $item = Get-ItemProperty -LiteralPath "HKLM:\SYSTEM\CurrentControlSet\Services\$Name" -Name 'ImagePath' -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    ([string]$item.ImagePath) -replace '^\\\?\?\\', ''
}

function Write-VmwalkSignatureWarning {
    param([Parameter(Mandatory = $true)][string]$DriverPath)
    # Get-AuthenticodeSignature: https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.security/get-authenticodesignature
    $signature = Get-AuthenticodeSignature -FilePath $DriverPath
    if ($signature.Status -eq 'NotSigned') {
        Write-Warning "$DriverPath has no signature: Windows will refuse it with error 577 (STATUS_INVALID_IMAGE_HASH) even in test mode. Load the package that cargo make signed."
    } else {
        Write-Host "Signature: $($signature.Status) ($($signature.SignerCertificate.Subject))"
    }
}

function Install-VmwalkService {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true)][string]$DriverPath,
        [string]$Name = $script:DefaultServiceName
    )
    $full = (Resolve-Path -LiteralPath $DriverPath).ProviderPath
    Write-VmwalkSignatureWarning -DriverPath $full
    $state = Get-VmwalkServiceState -Name $Name
    if ($state -ne 'NotInstalled') {
        $current = Get-VmwalkImagePath -Name $Name
        if ($current -eq $full) {
            Write-Host "Service $Name is already installed for $full (state: $state)."
            return
        }
        throw "Service $Name already exists (ERROR_SERVICE_EXISTS, 1073) for '$current', not '$full'. Run Remove first (or pnputil /delete-driver oemNN.inf /uninstall if pnputil installed it)."
    }
    # sc.exe create: https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/sc-create
    # ("A space is required between an option and its value", hence 'type=', 'kernel').
    if ($PSCmdlet.ShouldProcess($Name, "sc.exe create $Name type= kernel start= demand binPath= $full")) {
        $result = Invoke-Native -FilePath 'sc.exe' -ArgumentList @('create', $Name, 'type=', 'kernel', 'start=', 'demand', 'binPath=', $full, 'DisplayName=', $Name)
        if ($result.ExitCode -ne 0) {
            throw (Format-NativeFailure -Command "sc.exe create $Name" -Result $result)
        }
        Write-Host "Installed service $Name for $full (state: $(Get-VmwalkServiceState -Name $Name))."
    }
}

function Set-VmwalkMappingMethod {
    <#
    .SYNOPSIS
    Writes (or, for Default, removes) MappingMethod under the service's
    Parameters key, which DriverEntry reads. NonPagedPoolMdl runs the design's
    first sequence; the driver refuses it while Driver Verifier checks it.
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true)][ValidateSet('Default', 'PartialMdl', 'NonPagedPoolMdl')][string]$Method,
        [string]$Name = $script:DefaultServiceName
    )
    $key = "HKLM:\SYSTEM\CurrentControlSet\Services\$Name\Parameters"
    if ($Method -eq 'Default') {
        if ((Test-Path -LiteralPath $key) -and $null -ne (Get-ItemProperty -LiteralPath $key -Name 'MappingMethod' -ErrorAction SilentlyContinue)) {
            if ($PSCmdlet.ShouldProcess("$key\MappingMethod", 'Remove-ItemProperty')) {
                Remove-ItemProperty -LiteralPath $key -Name 'MappingMethod'
                Write-Host 'MappingMethod removed: DriverEntry uses its default (PartialMdl).'
            }
        }
        return
    }
    if ($PSCmdlet.ShouldProcess("$key\MappingMethod", "set REG_SZ $Method")) {
        if (-not (Test-Path -LiteralPath $key)) { New-Item -Path $key -Force | Out-Null }
        New-ItemProperty -LiteralPath $key -Name 'MappingMethod' -PropertyType String -Value $Method -Force | Out-Null
        Write-Host "MappingMethod = $Method (read by the next DriverEntry)."
    }
}

function ConvertTo-VmwalkAddress {
    <#
    .SYNOPSIS
    The driver's reading of -Address values, before anything is written:
    each string may hold several addresses separated by commas or blanks
    (powershell -File passes '0x1000,0x2000' as one string); each is hex as
    WinDbg writes it (0x optional, ` and _ between digits ignored; bare
    digits are hex: 140000000 is 0x140000000), at most 64 bits, at most 16
    in all. Returns them as 0x-prefixed hex strings; throws on the first one
    the driver would refuse. Pure: no registry, no service.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param([AllowEmptyCollection()][string[]]$Address)
    $parsed = [System.Collections.Generic.List[string]]::new()
    foreach ($text in $Address) {
        foreach ($word in ($text -split '[,\s]+' | Where-Object { $_ -ne '' })) {
            $digits = $word -replace '^0[xX]', '' -replace '[`_]', ''
            if ($digits -notmatch '^[0-9a-fA-F]+$') {
                throw "Address '$word' is not hex: the driver would skip it (WinDbg's forms: 7ff6c0001000, 0x7ff6c0001000, fffff800``12345000)."
            }
            $significant = $digits.TrimStart('0')
            if ($significant.Length -gt 16) {
                throw "Address '$word' has more than 64 bits: the driver would skip it."
            }
            if ($significant -eq '') { $significant = '0' }
            $parsed.Add('0x' + $significant.ToLowerInvariant())
        }
    }
    if ($parsed.Count -gt 16) { throw "At most 16 addresses, not $($parsed.Count)." }
    , $parsed.ToArray()
}

function Set-VmwalkNamedAddresses {
    <#
    .SYNOPSIS
    Writes Addresses (REG_MULTI_SZ), and ProcessId (REG_DWORD) or
    ProcessName (REG_SZ), under the service's Parameters key for the next
    DriverEntry, or removes them with -Clear.
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        # Strings as WinDbg writes them (ConvertTo-VmwalkAddress).
        [string[]]$Address,
        [int]$ProcessId,
        [string]$ProcessName,
        [switch]$Clear,
        [string]$Name = $script:DefaultServiceName
    )
    $key = "HKLM:\SYSTEM\CurrentControlSet\Services\$Name\Parameters"
    if ($Clear) {
        foreach ($value in 'Addresses', 'ProcessId', 'ProcessName') {
            if ((Test-Path -LiteralPath $key) -and $null -ne (Get-ItemProperty -LiteralPath $key -Name $value -ErrorAction SilentlyContinue)) {
                if ($PSCmdlet.ShouldProcess("$key\$value", 'Remove-ItemProperty')) {
                    Remove-ItemProperty -LiteralPath $key -Name $value
                }
            }
        }
        Write-Host 'Addresses, ProcessId and ProcessName cleared.'
        return
    }
    $Address = ConvertTo-VmwalkAddress -Address $Address
    if ($Address.Count -eq 0) {
        if ($ProcessId -or $ProcessName) {
            throw '-ProcessId and -ProcessName name the process of -Address''s user addresses: give -Address too.'
        }
        return
    }
    if ($PSCmdlet.ShouldProcess("$key\Addresses", "set REG_MULTI_SZ $($Address -join ', ')")) {
        if (-not (Test-Path -LiteralPath $key)) { New-Item -Path $key -Force | Out-Null }
        New-ItemProperty -LiteralPath $key -Name 'Addresses' -PropertyType MultiString -Value $Address -Force | Out-Null
        # One of ProcessId (which wins in the driver) and ProcessName, or neither.
        foreach ($value in 'ProcessId', 'ProcessName') {
            if ($null -ne (Get-ItemProperty -LiteralPath $key -Name $value -ErrorAction SilentlyContinue)) {
                Remove-ItemProperty -LiteralPath $key -Name $value
            }
        }
        if ($ProcessId) {
            New-ItemProperty -LiteralPath $key -Name 'ProcessId' -PropertyType DWord -Value $ProcessId -Force | Out-Null
        } elseif ($ProcessName) {
            New-ItemProperty -LiteralPath $key -Name 'ProcessName' -PropertyType String -Value $ProcessName -Force | Out-Null
        }
        $process = if ($ProcessId) { ", ProcessId = $ProcessId" } elseif ($ProcessName) { ", ProcessName = $ProcessName" } else { '' }
        Write-Host "Addresses = $($Address -join ', ')$process (read by the next DriverEntry)."
    }
}

function Start-VmwalkService {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Name = $script:DefaultServiceName)
    $state = Get-VmwalkServiceState -Name $Name
    if ($state -eq 'Running') {
        Write-Host "Service $Name is already running."
        return
    }
    if ($state -eq 'NotInstalled' -and -not $WhatIfPreference) {
        throw "Service $Name is not installed (1060): run Install first."
    }
    # sc.exe start: https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-server-2012-r2-and-2012/cc742126(v=ws.11)
    # For a kernel service it returns after DriverEntry did.
    if ($PSCmdlet.ShouldProcess($Name, "sc.exe start $Name")) {
        $result = Invoke-Native -FilePath 'sc.exe' -ArgumentList @('start', $Name)
        if ($result.ExitCode -ne 0 -and $result.ExitCode -ne 1056) {
            $after = Get-VmwalkServiceState -Name $Name
            throw ((Format-NativeFailure -Command "sc.exe start $Name" -Result $result) + [Environment]::NewLine + "Service state now: $after.")
        }
        Write-Host "Started $Name (state: $(Get-VmwalkServiceState -Name $Name))."
    }
}

function Stop-VmwalkService {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [string]$Name = $script:DefaultServiceName,
        [int]$TimeoutSeconds = 15
    )
    $state = Get-VmwalkServiceState -Name $Name
    if ($state -eq 'NotInstalled' -or $state -eq 'Stopped') {
        Write-Host "Service ${Name}: $state, nothing to stop."
        return
    }
    # sc.exe stop (ControlService SERVICE_CONTROL_STOP; a driver unloads through DriverUnload):
    # https://learn.microsoft.com/en-us/windows/win32/services/controlling-a-service-using-sc
    if ($PSCmdlet.ShouldProcess($Name, "sc.exe stop $Name")) {
        $result = Invoke-Native -FilePath 'sc.exe' -ArgumentList @('stop', $Name)
        if ($result.ExitCode -eq 1052) {
            throw "sc.exe stop $Name failed with 1052 (ERROR_INVALID_SERVICE_CONTROL): the loaded image has no DriverUnload, so it stays loaded until a reboot."
        }
        if ($result.ExitCode -ne 0 -and $result.ExitCode -ne 1062) {
            throw (Format-NativeFailure -Command "sc.exe stop $Name" -Result $result)
        }
        $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
        while (($state = Get-VmwalkServiceState -Name $Name) -eq 'StopPending' -and (Get-Date) -lt $deadline) {
            Start-Sleep -Milliseconds 250
        }
        if ($state -ne 'Stopped') {
            throw "Service $Name is still '$state' after ${TimeoutSeconds}s: the driver is still loaded (DriverUnload did not return?). Check DebugView; a reboot unloads it."
        }
        Write-Host "Stopped $Name (DriverUnload ran)."
    }
}

function Remove-VmwalkService {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$Name = $script:DefaultServiceName)
    $state = Get-VmwalkServiceState -Name $Name
    if ($state -eq 'NotInstalled') {
        Write-Host "Service $Name is not installed, nothing to remove."
        return
    }
    if ($state -ne 'Stopped') {
        Stop-VmwalkService -Name $Name
    }
    # sc.exe delete: https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/sc-delete
    if ($PSCmdlet.ShouldProcess($Name, "sc.exe delete $Name")) {
        $result = Invoke-Native -FilePath 'sc.exe' -ArgumentList @('delete', $Name)
        if ($result.ExitCode -ne 0 -and $result.ExitCode -ne 1060) {
            throw (Format-NativeFailure -Command "sc.exe delete $Name" -Result $result)
        }
        $after = Get-VmwalkServiceState -Name $Name
        if ($after -ne 'NotInstalled') {
            throw "Service $Name is marked for deletion but still exists (state: $after). $($script:ErrorHints[1072])"
        }
        Write-Host "Removed service $Name."
    }
}

# ---------------------------------------------------------------- DebugView

# Starts Sysinternals DebugView with kernel capture if Dbgview64.exe or Dbgview.exe is on PATH.
# Switches per DebugView's help (Dbgview.chm, "Command line options"):
# /k capture kernel, /v verbose kernel output (all levels, not only errors),
# /l log file, /f skip the filter prompt; /accepteula is the Sysinternals EULA switch.
# https://learn.microsoft.com/en-us/sysinternals/downloads/debugview
function Start-VmwalkDebugView {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([Parameter(Mandatory = $true)][string]$LogPath)
    $exe = @(Get-Command -Name 'Dbgview64.exe', 'Dbgview.exe' -CommandType Application -ErrorAction SilentlyContinue)
    if ($exe.Count -eq 0) {
        Write-Host 'DebugView (Dbgview64.exe or Dbgview.exe) is not on PATH: no capture. Install it from Sysinternals, or attach WinDbg.'
        return $null
    }
    $running = @(Get-Process -Name 'Dbgview', 'Dbgview64' -ErrorAction SilentlyContinue)
    if ($running.Count -gt 0) {
        Write-Warning "DebugView is already running (pid $($running[0].Id)); only one instance captures kernel output. Using it; no log file is written."
        return $null
    }
    $arguments = @('/accepteula', '/f', '/k', '/v', '/l', ('"{0}"' -f $LogPath))
    if ($PSCmdlet.ShouldProcess($exe[0].Path, "start $($arguments -join ' ')")) {
        $process = Start-Process -FilePath $exe[0].Path -ArgumentList $arguments -PassThru
        # Let it load its capture driver before DriverEntry prints.
        Start-Sleep -Seconds 3
        Write-Host "DebugView started (pid $($process.Id)), logging to $LogPath."
        return $process
    }
    $null
}

Export-ModuleMember -Function @(
    'Assert-Administrator',
    'Get-Win32ErrorText',
    'Invoke-Native',
    'Resolve-VmwalkPackage',
    'Get-SecureBootState',
    'Test-TestSigningActive',
    'Enable-VmwalkTestSigning',
    'Add-VmwalkTestCertificate',
    'Get-VmwalkDebugPrintMask',
    'Enable-VmwalkDebugPrint',
    'Get-VmwalkServiceState',
    'Get-VmwalkImagePath',
    'Write-VmwalkSignatureWarning',
    'Install-VmwalkService',
    'Set-VmwalkMappingMethod',
    'ConvertTo-VmwalkAddress',
    'Set-VmwalkNamedAddresses',
    'Start-VmwalkService',
    'Stop-VmwalkService',
    'Remove-VmwalkService',
    'Start-VmwalkDebugView'
)
