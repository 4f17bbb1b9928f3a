# Pester 5 tests of the scripts' pure functions: -Address is read with the
# driver's own rules (src/kernel/named.rs, parse_address), and refused before
# anything is written. Run by the Windows CI job (Invoke-Pester); no
# PowerShell runtime exists on our Linux machines, where only the syntax is
# checked (scripts/check-powershell.sh).
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

BeforeAll {
    Import-Module -Name (Join-Path $PSScriptRoot '..\..\scripts\VmwalkTools.psm1') -Force
}

Describe 'ConvertTo-VmwalkAddress' {
    It 'reads bare digits as hex, as WinDbg and the driver do' {
        ConvertTo-VmwalkAddress -Address '140000000' | Should -Be '0x140000000'
    }
    It 'takes 0x, backticks and underscores' {
        $got = ConvertTo-VmwalkAddress -Address '0x7ff6c0001000', 'fffff800`12345000', '0xffff_8000_0000_1000'
        $got | Should -Be @('0x7ff6c0001000', '0xfffff80012345000', '0xffff800000001000')
    }
    It 'splits one string on commas and blanks (powershell -File passes a list as one string)' {
        $got = ConvertTo-VmwalkAddress -Address '0x7ff6c0001000,fffff800`12345000 1000'
        $got | Should -Be @('0x7ff6c0001000', '0xfffff80012345000', '0x1000')
    }
    It 'keeps leading zeros out and a zero address' {
        ConvertTo-VmwalkAddress -Address '0x0000000000000000001000', '0' | Should -Be @('0x1000', '0x0')
    }
    It 'refuses what the driver would skip: not hex' {
        { ConvertTo-VmwalkAddress -Address '0x7ff6zz' } | Should -Throw "*is not hex*"
        { ConvertTo-VmwalkAddress -Address 'notepad.exe' } | Should -Throw "*is not hex*"
    }
    It 'refuses more than 64 bits' {
        { ConvertTo-VmwalkAddress -Address '1ffffffffffffffff' } | Should -Throw "*more than 64 bits*"
    }
    It 'refuses more than 16 addresses' {
        $many = (1..17 | ForEach-Object { '{0:x}000' -f $_ }) -join ','
        { ConvertTo-VmwalkAddress -Address $many } | Should -Throw "*At most 16 addresses, not 17*"
    }
    It 'returns nothing for nothing' {
        @(ConvertTo-VmwalkAddress -Address @()).Count | Should -Be 0
    }
}

Describe 'Set-VmwalkNamedAddresses' {
    It 'refuses a process named for no address, before writing anything' {
        { Set-VmwalkNamedAddresses -ProcessName 'notepad.exe' -Name 'vmwalk-pester-none' -WhatIf } |
            Should -Throw "*give -Address too*"
    }
}

Describe 'Format-NativeFailure' {
    It 'explains 1359, what sc.exe start reports when the alias proof fails (STATUS_INTERNAL_ERROR)' {
        InModuleScope VmwalkTools {
            $text = Format-NativeFailure -Command 'sc.exe start vmwalk' -Result ([pscustomobject]@{ ExitCode = 1359; Output = '' })
            $text | Should -BeLike '*STATUS_INTERNAL_ERROR (0xC00000E5)*alias proof*'
        }
    }
}
