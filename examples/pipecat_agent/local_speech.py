"""Speech services that run on this machine, for the Pipecat example bot (bot.py): no network, no model.

- `EspeakTTSService`: a real Pipecat TTS service whose voice is espeak-ng (the Debian package). It speaks
  what it is given; swap it for a hosted TTS (Cartesia, ElevenLabs, ...) in production.
- `ScriptedSTTService`: a stand-in for a speech recognizer. It finds the callee's utterances by their
  energy (speech, then at least `silence_seconds` of quiet) and, for each, "hears" the next of its
  scripted lines (or `[speech, 1.2 s]` once the script has run out). So the audio path from the callee
  to the bot is real and tested, and the words are known in advance. Swap it for a real STT (Deepgram,
  Whisper, ...) in production.

Both are deterministic: the same input gives the same frames."""

from __future__ import annotations

import asyncio
import io
import math
import shutil
import struct
import wave
from collections.abc import AsyncGenerator, Sequence

from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TranscriptionFrame, TTSAudioRawFrame
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601

CHUNK_SECONDS = 0.1  # the TTS yields its audio in frames of 100 ms (the transport sends 20-40 ms packets)


async def espeak_wav(text: str, voice: str) -> bytes:
    """espeak-ng's speech of `text` as a WAV file (22,050 Hz, 16-bit mono); English if `voice` is unknown."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    for name in dict.fromkeys([voice, "en"]):
        process = await asyncio.create_subprocess_exec(
            espeak, "-v", name, "--stdout", text, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await process.communicate()
        if process.returncode == 0 and out:
            return out
    raise RuntimeError(f"espeak-ng could not speak with voice {voice!r}")


def espeak_voice(language: str | None) -> str:
    """A context language (BCP 47, e.g. en-US) as an espeak-ng voice name (en-us)."""
    return language.lower() if language else "en"


class EspeakTTSService(TTSService):
    """Pipecat TTS by espeak-ng: the whole sentence is synthesised, resampled to the pipeline's output
    rate (8 kHz on a phone call) and yielded as audio frames."""

    def __init__(self, *, voice: str = "en") -> None:
        super().__init__(
            push_start_frame=True,  # the base class opens the audio context and pushes TTSStartedFrame
            push_stop_frames=True,  # and TTSStoppedFrame once the audio has stopped
            settings=TTSSettings(model=None, voice=voice, language=None),
        )
        self._voice = voice
        self._resampler = create_file_resampler()
        self.seconds_spoken = 0.0  # of audio produced, at the output rate

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        try:
            wav_bytes = await espeak_wav(text, self._voice)
        except RuntimeError as exc:
            yield ErrorFrame(error=str(exc))
            return
        with wave.open(io.BytesIO(wav_bytes)) as wav:
            rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
        audio = await self._resampler.resample(pcm, rate, self.sample_rate)
        self.seconds_spoken += len(audio) / 2 / self.sample_rate
        step = int(self.sample_rate * CHUNK_SECONDS) * 2
        for i in range(0, len(audio), step):
            yield TTSAudioRawFrame(
                audio=audio[i : i + step], sample_rate=self.sample_rate, num_channels=1, context_id=context_id
            )


def rms(pcm: bytes) -> float:
    """The root mean square of 16-bit little-endian PCM."""
    count = len(pcm) // 2
    if count == 0:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    return math.sqrt(sum(s * s for s in samples) / count)


class ScriptedSTTService(STTService):
    """A stand-in speech recognizer: each utterance (audio above `threshold` RMS for at least
    `min_speech_seconds`, ended by `silence_seconds` of quiet) is heard as the next scripted line."""

    def __init__(
        self,
        script: Sequence[str] = (),
        *,
        threshold: float = 500.0,
        min_speech_seconds: float = 0.2,
        silence_seconds: float = 0.4,
    ) -> None:
        super().__init__(
            settings=STTSettings(model=None, language=None),
            ttfs_p99_latency=silence_seconds,  # an utterance is heard once this much quiet has followed it
        )
        self._script = list(script)
        self._threshold = threshold
        self._min_speech = min_speech_seconds
        self._silence_needed = silence_seconds
        self._speech = 0.0  # seconds of speech in the current utterance
        self._silence = 0.0  # seconds of quiet since it
        self.heard: list[str] = []

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        seconds = len(audio) / 2 / self.sample_rate
        if rms(audio) >= self._threshold:
            self._speech += seconds + self._silence  # a short pause inside an utterance belongs to it
            self._silence = 0.0
        elif self._speech:
            self._silence += seconds
            if self._silence >= self._silence_needed:
                spoken, self._speech, self._silence = self._speech, 0.0, 0.0
                if spoken >= self._min_speech:
                    text = self._script.pop(0) if self._script else f"[speech, {spoken:.1f} s]"
                    self.heard.append(text)
                    yield TranscriptionFrame(text=text, user_id=self._user_id, timestamp=time_now_iso8601())
