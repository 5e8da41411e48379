"""The ``dds`` command-line client.

It talks to the DDS API over HTTP (httpx) and encrypts/decrypts with the pure-Python
Crypt4GH engine ``c4gh``; it never imports Django, so it installs and runs on a
cluster login node without the server's dependencies.
"""
