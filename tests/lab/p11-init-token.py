#!/usr/bin/env python3
"""Initialise a PKCS#11 token and its user PIN without putting either PIN on a
command line (softhsm2-util and pkcs11-tool only take PINs as arguments or from
a terminal). Talks to the module directly through ctypes.

usage: p11-init-token.py <module.so> <label> <so-pin-file> <pin-file>
Initialises the first slot whose token is not yet initialised.
"""
import ctypes as C
import sys

CKF_RW_SESSION, CKF_SERIAL_SESSION = 0x2, 0x4
CKF_TOKEN_INITIALIZED = 0x400
CKU_SO = 0
ULONG = C.c_ulong


class Version(C.Structure):
    _fields_ = [("major", C.c_ubyte), ("minor", C.c_ubyte)]


class TokenInfo(C.Structure):
    _fields_ = [("label", C.c_char * 32), ("manufacturerID", C.c_char * 32),
                ("model", C.c_char * 16), ("serialNumber", C.c_char * 16),
                ("flags", ULONG)] + [(n, ULONG) for n in (
                    "maxSessionCount", "sessionCount", "maxRwSessionCount", "rwSessionCount",
                    "maxPinLen", "minPinLen", "totalPublicMemory", "freePublicMemory",
                    "totalPrivateMemory", "freePrivateMemory")] + [
                ("hardwareVersion", Version), ("firmwareVersion", Version),
                ("utcTime", C.c_char * 16)]


def main(module, label, so_pin_file, pin_file):
    lib = C.CDLL(module)

    def call(name, *args):
        rv = getattr(lib, name)(*args)
        if rv != 0:
            sys.exit(f"p11-init-token: {name} failed: CKR 0x{rv:x}")

    def slots():
        n = ULONG(0)
        call("C_GetSlotList", C.c_ubyte(1), None, C.byref(n))
        ids = (ULONG * n.value)()
        call("C_GetSlotList", C.c_ubyte(1), ids, C.byref(n))
        for slot in ids[:n.value]:
            info = TokenInfo()
            call("C_GetTokenInfo", ULONG(slot), C.byref(info))
            yield slot, info

    so_pin = open(so_pin_file, "rb").read().strip()
    pin = open(pin_file, "rb").read().strip()
    padded = label.encode().ljust(32, b" ")
    if len(padded) > 32:
        sys.exit("p11-init-token: label longer than 32 bytes")

    call("C_Initialize", None)
    free = next((s for s, i in slots() if not i.flags & CKF_TOKEN_INITIALIZED), None)
    if free is None:
        sys.exit("p11-init-token: no free slot")
    call("C_InitToken", ULONG(free), so_pin, ULONG(len(so_pin)), padded)
    # SoftHSM2 moves an initialised token to a new slot id: look it up again by label.
    call("C_Finalize", None)
    call("C_Initialize", None)
    slot = next((s for s, i in slots() if i.label == padded), None)
    if slot is None:
        sys.exit(f"p11-init-token: token '{label}' not found after C_InitToken")
    session = ULONG(0)
    call("C_OpenSession", ULONG(slot), ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION), None, None, C.byref(session))
    call("C_Login", session, ULONG(CKU_SO), so_pin, ULONG(len(so_pin)))
    call("C_InitPIN", session, pin, ULONG(len(pin)))
    call("C_Logout", session)
    call("C_CloseSession", session)
    call("C_Finalize", None)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
