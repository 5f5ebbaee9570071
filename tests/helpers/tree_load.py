"""A load client: ``python tree_load.py ENDPOINT REPO_ID TIMES`` lists a repo's tree TIMES times, all pages.

Each listing is ``GET /api/models/{repo}/tree/main?recursive=true&expand=true`` followed through the
``Link: <...>; rel="next"`` headers, as huggingface_hub's ``list_repo_tree`` does, on one kept-alive
connection. Prints one JSON line: ``{"entries": [...count per listing], "pages": N, "statuses": [...]}``.
Standard library only, so that many of these start quickly.
"""
import http.client
import json
import re
import sys
from urllib.parse import urlsplit

_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


def list_all(connection: http.client.HTTPConnection, url: str) -> tuple:
    """Every entry path of the listing at ``url`` and the number of pages it took.

    Raises:
        RuntimeError: on a status other than 200 (the message names it and the URL).
    """
    paths, pages = [], 0
    while url:
        parts = urlsplit(url)
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: status {response.status}: {body[:200]!r}")
        paths += [entry["path"] for entry in json.loads(body)]
        pages += 1
        match = _NEXT.search(response.getheader("Link") or "")
        url = match.group(1) if match else None
    return paths, pages


def main(argv: list) -> int:
    """Run the listings (see the module docstring); returns the exit status."""
    endpoint, repo_id, times = argv[0], argv[1], int(argv[2])
    host = urlsplit(endpoint)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=300)
    counts, total_pages = [], 0
    for _ in range(times):
        paths, pages = list_all(connection, f"{endpoint}/api/models/{repo_id}/tree/main?recursive=true&expand=true")
        counts.append(len(set(paths)) if len(set(paths)) == len(paths) else -len(paths))
        total_pages += pages
    print(json.dumps({"entries": counts, "pages": total_pages}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
