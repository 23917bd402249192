"""MADE test cases: synthetic frames built from real live frames or still photos.

Everything here is made by this code, not recorded, and every report labels it "made":

- ``screen_replay``: live frames re-shot through a simulated screen: resampled to a screen's
  resolution, an RGB sub-pixel grid (the source of moire when the camera resamples it), a tone
  and colour shift, a black bezel, a specular glare patch, shown inside a plain room, with a
  slow hand-held drift, then camera blur, sensor noise and JPEG.
- ``printed_photo``: a still photo (LFW or CelebA) as a printed-photo stand-in: a paper print
  with a white border, flatter contrast and paper grain, held in the same room for N frames with
  a small synthetic hand shake, then the same camera model.
- ``repeated_still`` / ``noisy_still``: one live frame fed N times, bit-identical (a still picture
  fed as video) or with fresh noise added to each copy (a still that defeats an equality check).
- ``framed_live``: live frames with straight vertical edges composited behind the person (door
  frame, window, bookshelf): static background geometry that a live owner must still pass with.
  A rough silhouette from each frame's face box hides the edges where the person stands in
  front of them; it is a box-and-ellipse shape, not a segmentation, so hair and arms can still
  be drawn over at the silhouette's edge.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

MADE = "made"


def room(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A plain synthetic room: a wall gradient, a few darker blocks (furniture), fine noise."""
    base = rng.uniform(90, 200, 3)
    ramp = np.linspace(0.8, 1.1, height)[:, None, None]
    img = np.clip(ramp * base[None, None, :], 0, 255) * np.ones((height, width, 3))
    for _ in range(rng.integers(2, 5)):
        x, y = int(rng.integers(0, width)), int(rng.integers(height // 3, height))
        w, h = int(rng.integers(width // 8, width // 3)), int(rng.integers(height // 8, height // 2))
        img[y : y + h, x : x + w] *= rng.uniform(0.4, 0.8)
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def camera(rgb: np.ndarray, rng: np.random.Generator, blur: float = 0.8, noise: float = 2.5) -> np.ndarray:
    """A webcam's capture: a little defocus, sensor noise, JPEG compression."""
    out = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), blur)
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 90))])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else out


def subpixel_screen(rgb: np.ndarray, pitch: int, depth: float, tone: np.ndarray) -> np.ndarray:
    """The image as a screen shows it: each pixel a triad of R, G, B stripes (modulation depth
    `depth`), then tone = (gain, gamma, r, g, b tint)."""
    h, w = rgb.shape[:2]
    big = cv2.resize(rgb, (w * pitch, h * pitch), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    stripes = np.zeros((1, pitch * w, 3), np.float32)
    for c in range(3):
        stripes[0, c::pitch, c] = 1.0
    lit = big * (1 - depth + depth * stripes) * tone[0] * tone[2:5]
    return np.clip(255 * (lit / 255) ** tone[1], 0, 255)


def glare(img: np.ndarray, centre: tuple[float, float], size: float, strength: float) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((xx - centre[0]) / size) ** 2 + ((yy - centre[1]) / (0.5 * size)) ** 2))
    return np.clip(img + strength * blob[..., None], 0, 255)


def hand_drift(n: int, rng: np.random.Generator, step: float) -> np.ndarray:
    """(n, 3): a slow random walk of x, y shift (pixels) and rotation (degrees)."""
    walk = np.cumsum(rng.normal(0, [step, step, step / 8], (n, 3)), axis=0)
    return walk - walk.mean(0)


def place(content: np.ndarray, scene: np.ndarray, quad_w: int, offset: np.ndarray) -> np.ndarray:
    """Warp content (float) into the scene, centred, quad_w wide, shifted and rotated by offset."""
    h, w = scene.shape[:2]
    ch, cw = content.shape[:2]
    scale = min(quad_w / cw, 0.95 * h / ch)
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), float(offset[2]), scale)
    m[:, 2] += (w / 2 - cw / 2 + offset[0], h / 2 - ch / 2 + offset[1])
    warped = cv2.warpAffine(content.astype(np.float32), m, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpAffine(np.ones((ch, cw), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    return scene.astype(np.float32) * (1 - mask) + warped * mask


def screen_replay(frames: list[np.ndarray], seed: int, out_size=(640, 480)) -> Iterator[np.ndarray]:
    """MADE: the live frames played on a simulated phone/monitor held up to a webcam."""
    rng = np.random.default_rng(seed)
    w, h = out_size
    scene = room(h, w, rng)
    fh, fw = frames[0].shape[:2]
    screen_w = int(rng.integers(200, 300))
    screen_h = int(round(screen_w * fh / fw))
    pitch = 3
    bezel = int(rng.integers(8, 20))
    quad_w = int(rng.uniform(0.55, 0.85) * w)
    drift = hand_drift(len(frames), rng, rng.uniform(0.3, 1.2))
    spot = (rng.uniform(0.2, 0.8) * quad_w, rng.uniform(0.2, 0.8) * quad_w * fh / fw)
    strength = rng.uniform(40, 120)
    depth = rng.uniform(0.08, 0.35)
    tone = np.array([rng.uniform(1.0, 1.3), rng.uniform(0.85, 1.1)] + list(rng.uniform(0.9, 1.1, 3)))
    for frame, offset in zip(frames, drift, strict=True):
        small = cv2.resize(frame, (screen_w, screen_h), interpolation=cv2.INTER_AREA)
        shown = subpixel_screen(small, pitch, depth, tone)
        b = bezel * pitch
        device = np.full((shown.shape[0] + 2 * b, shown.shape[1] + 2 * b, 3), 12.0, np.float32)
        device[b:-b, b:-b] = shown
        device = glare(
            device, (spot[0] * pitch + offset[0], spot[1] * pitch + offset[1]), 90.0 * pitch, strength
        )
        yield camera(np.clip(place(device, scene, quad_w, offset), 0, 255).astype(np.uint8), rng)


def paper(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A print of the photo: flatter contrast, a warm paper tone, grain, a white border."""
    img = photo.astype(np.float32)
    img = 30 + img * rng.uniform(0.7, 0.85)
    img *= np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.88, 0.96)], np.float32)
    img += rng.normal(0, 3.0, img.shape[:2])[..., None]
    border = max(6, photo.shape[1] // 20)
    sheet = np.full((img.shape[0] + 2 * border, img.shape[1] + 2 * border, 3), 235.0, np.float32)
    sheet[border:-border, border:-border] = img
    return sheet


def printed_photo(photo: np.ndarray, n: int, seed: int, out_size=(640, 480)) -> Iterator[np.ndarray]:
    """MADE: a printed photo held in front of a webcam for n frames with a small hand shake."""
    rng = np.random.default_rng(seed)
    w, h = out_size
    scene = room(h, w, rng)
    sheet = paper(photo, rng)
    quad_w = int(rng.uniform(0.35, 0.6) * w)
    drift = hand_drift(n, rng, rng.uniform(0.3, 1.0))
    light = rng.uniform(0.85, 1.15)
    for offset in drift:
        yield camera(np.clip(place(sheet, scene, quad_w, offset) * light, 0, 255).astype(np.uint8), rng)


def repeated_still(frame: np.ndarray, n: int) -> Iterator[np.ndarray]:
    """MADE: one frame n times, bit-identical."""
    for _ in range(n):
        yield frame.copy()


def noisy_still(frame: np.ndarray, n: int, seed: int, sigma: float = 2.0) -> Iterator[np.ndarray]:
    """MADE: one frame n times, each copy with fresh Gaussian noise (no two frames identical)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def person_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """(H, W, 1) float: 1 on a rough silhouette around a face box (head, neck, shoulders, body)."""
    h, w = shape
    x1, y1, x2, y2 = box
    fw, fh = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2
    mask = np.zeros((h, w), np.uint8)
    centre = (int(cx), int(y1 + 0.4 * fh))
    cv2.ellipse(mask, centre, (int(0.7 * fw), int(0.8 * fh)), 0, 0, 360, 1, -1)
    neck, shoulder = y2 - 0.05 * fh, y2 + 0.5 * fh
    body = np.array(
        [
            (cx - 0.45 * fw, neck),
            (cx + 0.45 * fw, neck),
            (cx + 1.5 * fw, shoulder),
            (cx + 1.7 * fw, h),
            (cx - 1.7 * fw, h),
            (cx - 1.5 * fw, shoulder),
        ],
        np.int32,
    )
    cv2.fillPoly(mask, [body], 1)
    return mask[..., None].astype(np.float32)


def framed_live(
    frames: list[np.ndarray], boxes: list[tuple[float, float, float, float] | None], style: str
) -> Iterator[np.ndarray]:
    """MADE (live): static straight edges behind the person (door frame, window, bookshelf).

    The edges sit at fixed image positions, set from the first face box: two vertical posts 0.5
    face widths beside the face, plus a lintel ('door'), a bright pane and a sill ('window') or
    shelf boards ('shelf'). Each frame's face box (the last known one where none was found)
    places a rough silhouette that hides the edges, as a person in front of them would.
    """
    h, w = frames[0].shape[:2]
    first = next(b for b in boxes if b is not None)
    x1, y1, x2, y2 = first
    fw = x2 - x1
    left, right = int(max(2, x1 - 0.5 * fw)), int(min(w - 3, x2 + 0.5 * fw))
    thick = max(3, int(0.08 * fw))
    layer = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w, 1), np.float32)

    def bar(xa, ya, xb, yb, colour, a=1.0):
        layer[ya:yb, xa:xb] = colour
        alpha[ya:yb, xa:xb] = a

    dark, light = (60, 45, 35), (235, 235, 225)
    top = int(max(thick, y1 - 0.6 * (y2 - y1)))
    if style == "window":
        bar(max(0, left - thick), 0, right + thick, top, (250, 250, 250), 0.35)
    colour = light if style == "window" else dark
    bar(max(0, left - thick), 0, left, h, colour)
    bar(right, 0, min(w, right + thick), h, colour)
    if style in ("door", "window"):
        bar(max(0, left - thick), top - thick, min(w, right + thick), top, colour)
    if style == "shelf":
        for frac in (0.15, 0.55, 0.9):
            y = int(frac * h)
            bar(0, y, max(0, left - thick), min(h, y + thick), dark)
            bar(min(w, right + thick), y, w, min(h, y + thick), dark)
    box = first
    for frame, found in zip(frames, boxes, strict=True):
        box = found or box
        a = alpha * (1 - person_mask((h, w), box))
        yield np.clip(frame * (1 - a) + layer * a, 0, 255).astype(np.uint8)
