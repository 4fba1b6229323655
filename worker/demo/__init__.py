"""`thumbx demo`: the embedded emulator, samples and the contact sheet."""
